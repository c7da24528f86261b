// Bindings for gemm and linear.  The caller (fastnn/backends/cpu.py) passes
// the output; the packing workspace is a per-Python-thread buffer that only
// grows, so repeated calls pay no allocation and concurrent calls (the GIL
// is released while they run) never share one.
#include <string>

#include "common/parallel.h"
#include "cpu/gemm/gemm.h"
#include "python/array_utils.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace fastnn::python {

namespace {

using cpu::Activation;
using cpu::GemmArgs;


void require_matrix(const py::array& a, const char* op, const char* name) {
  if (a.ndim() != 2) {
    throw py::value_error(std::string(op) + ": " + name + " must be 2-D, got " + std::to_string(a.ndim()) + "-D");
  }
  require_contiguous(a, op, name);
}

template <typename T>
void require_aligned(const py::array& a, const char* op, const char* name) {
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0) {
    throw py::value_error(std::string(op) + ": " + name + " must be aligned");
  }
}

void require_same_dtype(const py::array& a, const py::array& b, const char* op, const char* name_a,
                        const char* name_b) {
  if (!a.dtype().is(b.dtype())) {
    throw py::type_error(std::string(op) + ": " + name_a + " and " + name_b + " must have the same dtype");
  }
}

// An output that shares memory with an input would be read after it is overwritten:
// refuse it (both are C-contiguous here, so their byte ranges say exactly whether they
// overlap).  fastnn.ops words the error for users when this refuses the fast path.
void require_disjoint(const py::array& out, const py::array& in, const char* op, const char* name) {
  const auto* o = static_cast<const char*>(out.data());
  const auto* i = static_cast<const char*>(in.data());
  if (out.nbytes() > 0 && in.nbytes() > 0 && o < i + in.nbytes() && i < o + out.nbytes()) {
    throw py::value_error(std::string(op) + ": out shares memory with " + name);
  }
}

Activation parse_activation(const py::object& activation) {
  if (activation.is_none()) return Activation::none;
  const std::string name = py::cast<std::string>(activation);
  if (name == "relu") return Activation::relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  throw py::value_error("linear: activation must be None, 'relu', 'sigmoid' or 'tanh', got '" + name + "'");
}

template <typename T>
void run_gemm(GemmArgs<T>& args) {
  py::gil_scoped_release release;
  const int threads = get_num_threads();
  const size_t bytes = cpu::gemm_workspace_bytes(args, threads);
  void* ws = bytes > 0 ? thread_workspace().get(bytes) : nullptr;
  cpu::gemm(args, ws, bytes, threads);
}

// out = alpha * op(a) @ op(b) + beta * out
void gemm(const py::array& a, const py::array& b, py::array& out, bool trans_a, bool trans_b, double alpha,
          double beta) {
  const char* op = "gemm";
  const DType dt = dtype_of(a, op, "a");
  require_same_dtype(a, b, op, "a", "b");
  require_same_dtype(a, out, op, "a", "out");
  require_matrix(a, op, "a");
  require_matrix(b, op, "b");
  require_matrix(out, op, "out");
  require_writeable(out, op, "out");
  const int64_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
  const int64_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (kb != k) {
    throw py::value_error("gemm: inner dimensions differ: op(a) has " + std::to_string(k) + " columns, op(b) has " +
                          std::to_string(kb) + " rows");
  }
  if (out.shape(0) != m || out.shape(1) != n) {
    throw py::value_error("gemm: out must have shape (" + std::to_string(m) + ", " + std::to_string(n) + ")");
  }
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    require_aligned<T>(a, op, "a");
    require_aligned<T>(b, op, "b");
    require_aligned<T>(out, op, "out");
    require_disjoint(out, a, op, "a");
    require_disjoint(out, b, op, "b");
    GemmArgs<T> args;
    args.m = m;
    args.n = n;
    args.k = k;
    args.a = in_ptr<T>(a);
    args.lda = std::max<int64_t>(1, a.shape(1));
    args.trans_a = trans_a;
    args.b = in_ptr<T>(b);
    args.ldb = std::max<int64_t>(1, b.shape(1));
    args.trans_b = trans_b;
    args.c = out_ptr<T>(out);
    args.ldc = std::max<int64_t>(1, n);
    args.alpha = static_cast<T>(alpha);
    args.beta = static_cast<T>(beta);
    run_gemm(args);
  });
}

// out = act(x @ w + bias)
void linear(const py::array& x, const py::array& w, const py::object& bias, py::array& out,
            const py::object& activation) {
  const char* op = "linear";
  const DType dt = dtype_of(x, op, "x");
  const Activation act = parse_activation(activation);
  require_same_dtype(x, w, op, "x", "w");
  require_same_dtype(x, out, op, "x", "out");
  require_matrix(x, op, "x");
  require_matrix(w, op, "w");
  require_matrix(out, op, "out");
  require_writeable(out, op, "out");
  const int64_t m = x.shape(0), k = x.shape(1), n = w.shape(1);
  if (w.shape(0) != k) {
    throw py::value_error("linear: w must have " + std::to_string(k) + " rows (x has " + std::to_string(k) +
                          " columns), got " + std::to_string(w.shape(0)));
  }
  if (out.shape(0) != m || out.shape(1) != n) {
    throw py::value_error("linear: out must have shape (" + std::to_string(m) + ", " + std::to_string(n) + ")");
  }
  py::array b_arr;
  if (!bias.is_none()) {
    if (!py::isinstance<py::array>(bias)) throw py::type_error("linear: b must be a NumPy array or None");
    b_arr = py::reinterpret_borrow<py::array>(bias);
    require_same_dtype(x, b_arr, op, "x", "b");
    if (b_arr.ndim() != 1 || b_arr.shape(0) != n) {
      throw py::value_error("linear: b must have shape (" + std::to_string(n) + ",)");
    }
    require_contiguous(b_arr, op, "b");
  }
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    require_aligned<T>(x, op, "x");
    require_aligned<T>(w, op, "w");
    require_aligned<T>(out, op, "out");
    require_disjoint(out, x, op, "x");
    require_disjoint(out, w, op, "w");
    GemmArgs<T> args;
    args.m = m;
    args.n = n;
    args.k = k;
    args.a = in_ptr<T>(x);
    args.lda = std::max<int64_t>(1, k);
    args.b = in_ptr<T>(w);
    args.ldb = std::max<int64_t>(1, n);
    args.c = out_ptr<T>(out);
    args.ldc = std::max<int64_t>(1, n);
    if (!bias.is_none()) {
      require_aligned<T>(b_arr, op, "b");
      require_disjoint(out, b_arr, op, "b");
      args.bias = in_ptr<T>(b_arr);
    }
    args.act = act;
    run_gemm(args);
  });
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        "out = alpha * op(a) @ op(b) + beta * out (row-major; beta == 0 ignores out's contents).");
  m.def("linear", &linear, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("out"),
        py::arg("activation") = py::none(), "out = act(x @ w + b), bias and activation fused into the GEMM.");
  m.def("gemm_kernel", &cpu::gemm_kernel_name, "The GEMM micro-kernel the selected ISA uses.");
  m.def("gemm_workspace_bytes", [] { return thread_workspace().size(); },
        "Bytes of packing workspace this Python thread holds (grows, never shrinks).");
}

}  // namespace fastnn::python
