// Bindings for gemm and linear.  The caller (fastnn/backends/cpu.py, or
// fastnn.ops' fast path, which relies on every refusal being a TypeError or
// ValueError raised before anything is written) passes the output; the
// packing workspace is the per-Python-thread buffer of workspace.h.
#include <algorithm>
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

template <typename T>
void run_gemm(GemmArgs<T>& args) {
  const int team = get_num_threads();  // read once: sizes the workspace and runs the GEMM
  const size_t bytes = cpu::gemm_workspace_bytes(args, team);
  const auto ws = thread_workspace().acquire(bytes);
  py::gil_scoped_release release;
  cpu::gemm(args, ws.data(), bytes, team);
}

// The operands both bindings start with: a and b read, out written, a and b matrices.
template <typename T>
GemmArgs<T> operands(const py::array& a, const char* a_name, const py::array& b, const char* b_name, py::array& out,
                     const char* op) {
  GemmArgs<T> args;
  args.a = input<T>(a, op, a_name);
  args.b = input<T>(b, op, b_name);
  args.c = output<T>(out, op, "out");
  require_ndim(a, 2, op, a_name);
  require_ndim(b, 2, op, b_name);
  return args;
}

// The sizes of out (m x n) = op(a) (m x k) @ op(b) (k x n), and the leading dimensions (1
// for an empty matrix) of a and b as stored and of out.
template <typename T>
void set_sizes(GemmArgs<T>& args, int64_t m, int64_t n, int64_t k, int64_t a_cols, int64_t b_cols) {
  args.m = m;
  args.n = n;
  args.k = k;
  args.lda = std::max<int64_t>(1, a_cols);
  args.ldb = std::max<int64_t>(1, b_cols);
  args.ldc = std::max<int64_t>(1, n);
}

// out = alpha * op(a) @ op(b) + beta * out
void gemm(const py::array& a, const py::array& b, py::array& out, bool trans_a, bool trans_b, double alpha,
          double beta) {
  const char* op = "gemm";
  dispatch_float(dtype_of(a, op, "a"), [&](auto tag) {
    using T = decltype(tag);
    GemmArgs<T> args = operands<T>(a, "a", b, "b", out, op);
    const int64_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
    const int64_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
    if (kb != k) {
      throw py::value_error("gemm: inner dimensions differ: op(a) has " + std::to_string(k) +
                            " columns, op(b) has " + std::to_string(kb) + " rows");
    }
    require_shape(out, {m, n}, op, "out");
    require_disjoint(out, a, op, "a");
    require_disjoint(out, b, op, "b");
    set_sizes(args, m, n, k, a.shape(1), b.shape(1));
    args.trans_a = trans_a;
    args.trans_b = trans_b;
    args.alpha = static_cast<T>(alpha);
    args.beta = static_cast<T>(beta);
    run_gemm(args);
  });
}

// out = act(x @ w + bias)
void linear(const py::array& x, const py::array& w, const py::object& bias, py::array& out,
            const py::object& activation) {
  const char* op = "linear";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    GemmArgs<T> args = operands<T>(x, "x", w, "w", out, op);
    const int64_t m = x.shape(0), k = x.shape(1), n = w.shape(1);
    if (w.shape(0) != k) {
      throw py::value_error("linear: w must have " + std::to_string(k) + " rows (x has " + std::to_string(k) +
                            " columns), got " + std::to_string(w.shape(0)));
    }
    require_shape(out, {m, n}, op, "out");
    args.bias = optional_input<T>(bias, {n}, op, "b");
    require_disjoint(out, x, op, "x");
    require_disjoint(out, w, op, "w");
    if (!bias.is_none()) require_disjoint(out, bias.cast<py::array>(), op, "b");
    args.act = parse_activation(activation, op);
    set_sizes(args, m, n, k, k, n);
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
        "Bytes of kernel workspace this Python thread holds (see workspace_bytes for all threads).");
}

}  // namespace fastnn::python
