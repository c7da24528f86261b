// Bindings for the sequence ops (maxout, seq2col, the ragged reductions,
// gather_add).  Python allocates every output and passes it in, with lengths
// as int64; these functions check what memory safety needs (array_utils.h:
// dtypes, contiguity, alignment, writeable outputs, shapes recomputed from the
// inputs and options, and every length: non-negative, positive where a maximum
// needs a row, summing to the rows), turn the lengths into row offsets in the
// thread's workspace, and release the GIL around the kernel.  The index arrays
// the kernels scatter or gather through are checked by the kernels as they go;
// a bad one raises ValueError here, worded as fastnn.ops' backends word it.
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/seq.h"
#include "python/array_utils.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace fastnn::python {

namespace {

constexpr int64_t kInt32Limit = int64_t(1) << 31;

// The lengths of a ragged batch as row offsets (batch + 1 of them, in the thread's
// workspace), each length checked to be >= min_length (and < 2**31 where `which` is
// int32), their sum to be `rows` when rows >= 0 (the rows of `what`).
class Ragged {
 public:
  Ragged(const py::array& lengths, int64_t rows, const char* what, int64_t min_length, bool int32_rows,
         const char* op)
      : batch_(batch_of(lengths, op)),
        lease_(thread_workspace().acquire(sizeof(int64_t) * static_cast<size_t>(batch_ + 1))) {
    const auto* l = static_cast<const int64_t*>(lengths.data());
    int64_t* offsets = static_cast<int64_t*>(lease_.data());
    offsets[0] = 0;
    for (int64_t b = 0; b < batch_; ++b) {
      if (l[b] < min_length) {
        fail_value(op, "lengths", min_length > 0 ? "must all be > 0 (a maximum over no rows is undefined), got " +
                                                       std::to_string(l[b])
                                                 : "must all be >= 0, got " + std::to_string(l[b]));
      }
      if (int32_rows && l[b] >= kInt32Limit) {
        fail_value(op, "lengths", "must be < 2**31 (which is int32), got " + std::to_string(l[b]));
      }
      offsets[b + 1] = checked_add(offsets[b], l[b], op, "the sum of lengths");
    }
    if (offsets[batch_] > kMaxRows) fail_value(op, "lengths", "sum to more rows than any machine can hold");
    if (rows >= 0 && offsets[batch_] != rows) {
      fail_value(op, "lengths", std::string("must sum to the rows of ") + what + " (" + std::to_string(rows) +
                                    "), got " + std::to_string(offsets[batch_]));
    }
  }
  const int64_t* offsets() const { return static_cast<const int64_t*>(lease_.data()); }
  int64_t batch() const { return batch_; }
  int64_t rows() const { return offsets()[batch_]; }

 private:
  static constexpr int64_t kMaxRows = int64_t(1) << 59;
  static int64_t batch_of(const py::array& lengths, const char* op) {
    input<int64_t>(lengths, op, "lengths");
    require_ndim(lengths, 1, op, "lengths");
    return lengths.shape(0);
  }
  int64_t batch_;
  Workspace::Lease lease_;
};

void require_rows_of(const Ragged& ragged, const py::array& a, const char* op, const char* name) {
  if (a.shape(0) != ragged.batch()) {
    fail_value(op, "lengths", std::string("must have one entry per row of ") + name + " (" +
                                  std::to_string(a.shape(0)) + "), got " + std::to_string(ragged.batch()));
  }
}

void maxout(const py::array& x, py::array& best, py::array& which) {
  const char* op = "maxout";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = input<T>(x, op, "x");
    require_ndim(x, 3, op, "x");
    if (x.shape(2) < 1) fail_value(op, "x", "must have at least one piece, got shape " + shape_text(x));
    if (x.shape(2) >= kInt32Limit) fail_value(op, "x", "must have fewer than 2**31 pieces (which is int32)");
    T* bp = output<T>(best, op, "y");
    require_shape(best, {x.shape(0), x.shape(1)}, op, "y");
    int32_t* wp = output<int32_t>(which, op, "which");
    require_shape(which, {x.shape(0), x.shape(1)}, op, "which");
    const int64_t units = x.shape(0) * x.shape(1), pieces = x.shape(2);
    py::gil_scoped_release release;
    cpu::maxout_forward<T>(xp, bp, wp, units, pieces);
  });
}

void maxout_backward(const py::array& dy, const py::array& which, int64_t pieces, py::array& dx) {
  const char* op = "maxout_backward";
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    require_ndim(dy, 2, op, "dy");
    const int32_t* wp = input<int32_t>(which, op, "which");
    require_same_shape(dy, which, op, "which");
    require_range(pieces, 1, kInt32Limit - 1, op, "pieces");
    T* dxp = output<T>(dx, op, "out");
    require_shape(dx, {dy.shape(0), dy.shape(1), pieces}, op, "out");
    checked_mul(dy.size(), pieces, op, "the output size");
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = cpu::maxout_backward<T>(dyp, wp, dxp, dy.size(), pieces);
    }
    if (bad >= 0) {
      throw py::value_error(std::string(op) + ": which holds " + std::to_string(wp[bad]) + ", outside [0, " +
                            std::to_string(pieces) + ")");
    }
  });
}

// The window width 2 * nw + 1 times `width` values, checked.
int64_t window_values(int64_t nw, int64_t width, const char* op) {
  require_range(nw, 0, kMaxOption, op, "nw");
  return checked_mul(2 * nw + 1, width, op, "the window");
}

void seq2col(const py::array& x, const py::array& lengths, int64_t nw, py::array& cols) {
  const char* op = "seq2col";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = input<T>(x, op, "x");
    require_ndim(x, 2, op, "x");
    const Ragged ragged(lengths, x.shape(0), "x", 0, false, op);
    const int64_t out_width = window_values(nw, x.shape(1), op);
    T* cp = output<T>(cols, op, "out");
    require_shape(cols, {x.shape(0), out_width}, op, "out");
    py::gil_scoped_release release;
    cpu::seq2col_forward<T>(xp, cp, ragged.offsets(), ragged.batch(), x.shape(1), nw);
  });
}

void seq2col_backward(const py::array& dy, const py::array& lengths, int64_t nw, py::array& dx) {
  const char* op = "seq2col_backward";
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    require_ndim(dy, 2, op, "dy");
    require_range(nw, 0, kMaxOption, op, "nw");
    const int64_t slots = 2 * nw + 1;
    if (dy.shape(1) % slots != 0) {
      fail_value(op, "dy", "must have a multiple of 2 * nw + 1 = " + std::to_string(slots) +
                               " columns, got shape " + shape_text(dy));
    }
    const Ragged ragged(lengths, dy.shape(0), "dy", 0, false, op);
    T* dxp = output<T>(dx, op, "out");
    require_shape(dx, {dy.shape(0), dy.shape(1) / slots}, op, "out");
    py::gil_scoped_release release;
    cpu::seq2col_backward<T>(dyp, dxp, ragged.offsets(), ragged.batch(), dy.shape(1) / slots, nw);
  });
}

void reduce_sum(const char* op, bool mean, const py::array& x, const py::array& lengths, py::array& y) {
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = input<T>(x, op, "x");
    require_ndim(x, 2, op, "x");
    const Ragged ragged(lengths, x.shape(0), "x", 0, false, op);
    T* yp = output<T>(y, op, "out");
    require_shape(y, {ragged.batch(), x.shape(1)}, op, "out");
    py::gil_scoped_release release;
    cpu::reduce_sum_forward<T>(xp, yp, ragged.offsets(), ragged.batch(), x.shape(1), mean);
  });
}

void reduce_sum_backward(const char* op, bool mean, const py::array& dy, const py::array& lengths, py::array& dx) {
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    require_ndim(dy, 2, op, "dy");
    const Ragged ragged(lengths, -1, "dy", 0, false, op);
    require_rows_of(ragged, dy, op, "dy");
    T* dxp = output<T>(dx, op, "out");
    require_shape(dx, {ragged.rows(), dy.shape(1)}, op, "out");
    py::gil_scoped_release release;
    cpu::reduce_sum_backward<T>(dyp, dxp, ragged.offsets(), ragged.batch(), dy.shape(1), mean);
  });
}

void reduce_max(const py::array& x, const py::array& lengths, py::array& y, py::array& which) {
  const char* op = "reduce_max";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = input<T>(x, op, "x");
    require_ndim(x, 2, op, "x");
    const Ragged ragged(lengths, x.shape(0), "x", 1, true, op);
    T* yp = output<T>(y, op, "y");
    require_shape(y, {ragged.batch(), x.shape(1)}, op, "y");
    int32_t* wp = output<int32_t>(which, op, "which");
    require_shape(which, {ragged.batch(), x.shape(1)}, op, "which");
    py::gil_scoped_release release;
    cpu::reduce_max_forward<T>(xp, yp, wp, ragged.offsets(), ragged.batch(), x.shape(1));
  });
}

void reduce_max_backward(const py::array& dy, const py::array& which, const py::array& lengths, py::array& dx,
                         bool out_is_zero) {
  const char* op = "reduce_max_backward";
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    require_ndim(dy, 2, op, "dy");
    const Ragged ragged(lengths, -1, "dy", 1, true, op);
    require_rows_of(ragged, dy, op, "dy");
    const int32_t* wp = input<int32_t>(which, op, "which");
    require_same_shape(dy, which, op, "which");
    T* dxp = output<T>(dx, op, "out");
    require_shape(dx, {ragged.rows(), dy.shape(1)}, op, "out");
    int64_t bad;
    {
      py::gil_scoped_release release;
      bad = cpu::reduce_max_backward<T>(dyp, wp, dxp, ragged.offsets(), ragged.batch(), dy.shape(1), out_is_zero);
    }
    if (bad >= 0) {
      const int64_t b = bad / dy.shape(1);
      const std::string length = std::to_string(ragged.offsets()[b + 1] - ragged.offsets()[b]);
      throw py::value_error(std::string(op) + ": which holds " + std::to_string(wp[bad]) + " in row " +
                            std::to_string(b) + ", outside [0, " + length + ") (the length of sequence " +
                            std::to_string(b) + ")");
    }
  });
}

template <typename T, typename Index>
void gather_add_typed(const py::array& table, const py::array& indices, py::array& out, const char* op) {
  const T* tp = input<T>(table, op, "table");
  require_ndim(table, 2, op, "table");
  const Index* ip = input<Index>(indices, op, "indices");
  require_ndim(indices, 2, op, "indices");
  T* op_ = output<T>(out, op, "out");
  require_shape(out, {indices.shape(0), table.shape(1)}, op, "out");
  int64_t bad;
  {
    py::gil_scoped_release release;
    bad = cpu::gather_add<T, Index>(tp, ip, op_, table.shape(0), table.shape(1), indices.shape(0),
                                    indices.shape(1));
  }
  if (bad >= 0) {
    throw py::value_error(std::string(op) + ": indices holds " + std::to_string(ip[bad]) + ", outside [0, " +
                          std::to_string(table.shape(0)) + ")");
  }
}

void gather_add(const py::array& table, const py::array& indices, py::array& out) {
  const char* op = "gather_add";
  dispatch_float(dtype_of(table, op, "table"), [&](auto tag) {
    using T = decltype(tag);
    if (indices.dtype().is(py::dtype::of<int32_t>())) return gather_add_typed<T, int32_t>(table, indices, out, op);
    if (indices.dtype().is(py::dtype::of<uint32_t>())) return gather_add_typed<T, uint32_t>(table, indices, out, op);
    if (indices.dtype().is(py::dtype::of<int64_t>())) return gather_add_typed<T, int64_t>(table, indices, out, op);
    fail_type(op, "indices", "must be int32, uint32 or int64, got " + dtype_text(indices));
  });
}

}  // namespace

void bind_seq(py::module_& m) {
  m.def("maxout", &maxout, py::arg("x"), py::arg("y"), py::arg("which"),
        "y, which = the maximum of each unit's pieces (the last axis of x) and its piece.");
  m.def("maxout_backward", &maxout_backward, py::arg("dy"), py::arg("which"), py::arg("pieces"), py::arg("out"));
  m.def("seq2col", &seq2col, py::arg("x"), py::arg("lengths"), py::arg("nw"), py::arg("out"),
        "Each row with its nw neighbours on either side within its sequence (int64 lengths).");
  m.def("seq2col_backward", &seq2col_backward, py::arg("dy"), py::arg("lengths"), py::arg("nw"), py::arg("out"));
  m.def("reduce_sum", [](const py::array& x, const py::array& lengths, py::array& out) {
          reduce_sum("reduce_sum", false, x, lengths, out);
        }, py::arg("x"), py::arg("lengths"), py::arg("out"));
  m.def("reduce_mean", [](const py::array& x, const py::array& lengths, py::array& out) {
          reduce_sum("reduce_mean", true, x, lengths, out);
        }, py::arg("x"), py::arg("lengths"), py::arg("out"));
  m.def("reduce_sum_backward", [](const py::array& dy, const py::array& lengths, py::array& out) {
          reduce_sum_backward("reduce_sum_backward", false, dy, lengths, out);
        }, py::arg("dy"), py::arg("lengths"), py::arg("out"));
  m.def("reduce_mean_backward", [](const py::array& dy, const py::array& lengths, py::array& out) {
          reduce_sum_backward("reduce_mean_backward", true, dy, lengths, out);
        }, py::arg("dy"), py::arg("lengths"), py::arg("out"));
  m.def("reduce_max", &reduce_max, py::arg("x"), py::arg("lengths"), py::arg("y"), py::arg("which"));
  m.def("reduce_max_backward", &reduce_max_backward, py::arg("dy"), py::arg("which"), py::arg("lengths"),
        py::arg("out"), py::arg("out_is_zero") = false,
        "out = 0 (skipped when out_is_zero: a fresh np.zeros buffer), then each sequence's dy at its which.");
  m.def("gather_add", &gather_add, py::arg("table"), py::arg("indices"), py::arg("out"),
        "out[b] = the sum of table[indices[b, k]] over k (int32, uint32 or int64 indices).");
}

}  // namespace fastnn::python
