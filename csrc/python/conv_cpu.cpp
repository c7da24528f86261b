// Bindings for conv2d forward, backward-data and backward-weights (NHWC/HWIO;
// fastnn/backends/cpu_kernels/conv.py handles NCHW at the boundary).  The
// output sizes are recomputed here from the inputs and the options (padding
// ((top, bottom), (left, right))) and every buffer is checked against them,
// so that a caller bypassing fastnn.ops gets a ValueError/TypeError, never an
// out-of-bounds access.
#include <array>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "common/parallel.h"
#include "cpu/conv2d.h"
#include "cpu/conv2d_direct.h"
#include "cpu/pool.h"
#include "python/array_utils.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace fastnn::python {

namespace {

using Pair = std::array<int64_t, 2>;
using Padding = std::array<Pair, 2>;  // ((top, bottom), (left, right))

std::array<int64_t, 4> dims4(const py::array& a, const char* op, const char* name) {
  require_ndim(a, 4, op, name);
  return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
}

// The convolution of an image of shape x (n, h, w, c) with a kernel of shape w
// (kh, kw, c, o): options checked, output size recomputed from them.
cpu::Conv2dShape conv_shape(const std::array<int64_t, 4>& x, const std::array<int64_t, 4>& w, Pair stride,
                            const Padding& padding, Pair dilation, const char* op, const char* x_name,
                            const char* w_name) {
  for (int i = 0; i < 2; ++i) {
    require_range(stride[i], 1, kMaxOption, op, "stride");
    require_range(dilation[i], 1, kMaxOption, op, "dilation");
    require_range(padding[i][0], 0, kMaxOption, op, "padding");
    require_range(padding[i][1], 0, kMaxOption, op, "padding");
  }
  if (w[2] != x[3]) {
    throw py::value_error(std::string(op) + ": " + w_name + " has " + std::to_string(w[2]) + " input channels, " +
                          x_name + " has " + std::to_string(x[3]));
  }
  if (w[0] < 1 || w[1] < 1 || w[2] < 1 || w[3] < 1) {
    fail_value(op, w_name, "must have non-empty kernel and channel axes, got shape " + dims_text(w.data(), 4));
  }
  const int64_t out_h = window_output_size(x[1], w[0], stride[0], padding[0][0], padding[0][1], dilation[0], op, "row");
  const int64_t out_w = window_output_size(x[2], w[1], stride[1], padding[1][0], padding[1][1], dilation[1], op, "column");
  cpu::Conv2dShape s{x[0], x[1], x[2], x[3], w[0], w[1], w[3], out_h, out_w,
                     stride[0], stride[1], padding[0][0], padding[1][0], dilation[0], dilation[1]};
  try {
    cpu::check_conv2d_shape(s);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string(op) + ": " + e.what());
  }
  return s;
}

std::vector<int64_t> output_shape(const cpu::Conv2dShape& s) { return {s.batch, s.out_h, s.out_w, s.out_c}; }

// The checks of both backward bindings: dy and `in` (w for the data gradient, x for the
// weights') read, out written; out (dx: x's shape, or dw: w's) and `in` give the
// convolution, whose output shape dy must have.
template <typename T>
struct Backward {
  const T* dy;
  const T* in;
  T* out;
  cpu::Conv2dShape s;
};

template <typename T>
Backward<T> backward_arrays(const py::array& dy, const py::array& in, const char* in_name, py::array& out,
                            bool out_is_dx, Pair stride, const Padding& padding, Pair dilation, const char* op) {
  const T* dyp = input<T>(dy, op, "dy");
  const T* inp = input<T>(in, op, in_name);
  T* outp = output<T>(out, op, "out");
  const auto s =
      out_is_dx
          ? conv_shape(dims4(out, op, "out"), dims4(in, op, in_name), stride, padding, dilation, op, "out", in_name)
          : conv_shape(dims4(in, op, in_name), dims4(out, op, "out"), stride, padding, dilation, op, in_name, "out");
  require_shape(dy, output_shape(s), op, "dy");
  return {dyp, inp, outp, s};
}

// The end of every binding here, its arrays checked: kernel(workspace, bytes, team) without
// the GIL, on this thread's workspace of workspace_bytes(s, team) for the thread count
// read once.
template <typename Bytes, typename Kernel>
void run_with_workspace(const cpu::Conv2dShape& s, Bytes workspace_bytes, const Kernel& kernel) {
  const int team = get_num_threads();
  const size_t bytes = workspace_bytes(s, team);
  const auto ws = thread_workspace().acquire(bytes);
  py::gil_scoped_release release;
  kernel(ws.data(), bytes, team);
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d", [](const py::array& x, const py::array& w, const py::object& bias, Pair stride,
                     const Padding& padding, Pair dilation, const py::object& activation, py::array& out) {
    const char* op = "conv2d";
    dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = input<T>(x, op, "x");
      const T* wp = input<T>(w, op, "w");
      const auto s = conv_shape(dims4(x, op, "x"), dims4(w, op, "w"), stride, padding, dilation, op, "x", "w");
      const T* bp = optional_input<T>(bias, {s.out_c}, op, "b");
      const cpu::Activation act = parse_activation(activation, op);
      T* yp = output<T>(out, op, "out");
      require_shape(out, output_shape(s), op, "out");
      if (s.batch == 0) return;
      run_with_workspace(s, &cpu::conv2d_forward_workspace_bytes<T>, [&](void* ws, size_t bytes, int team) {
        cpu::conv2d_forward<T>(s, xp, wp, bp, act, yp, ws, bytes, team);
      });
    });
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("activation"), py::arg("out"),
     "out = act(conv(x, w) + bias), NHWC / HWIO; padding ((top, bottom), (left, right)).");

  m.def("conv2d_backward_data", [](const py::array& dy, const py::array& w, Pair stride, const Padding& padding,
                                   Pair dilation, py::array& out) {
    const char* op = "conv2d_backward_data";
    dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
      using T = decltype(tag);
      // out is dx: its shape is x's, from which the output size follows.
      const Backward<T> a = backward_arrays<T>(dy, w, "w", out, true, stride, padding, dilation, op);
      if (a.s.batch == 0) return;
      run_with_workspace(a.s, &cpu::conv2d_backward_data_workspace_bytes<T>, [&](void* ws, size_t bytes, int team) {
        cpu::conv2d_backward_data<T>(a.s, a.dy, a.in, a.out, ws, bytes, team);
      });
    });
  }, py::arg("dy"), py::arg("w"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("out"),
     "out (dx, x's shape) = the gradient of conv2d with respect to x.");

  m.def("conv2d_backward_weights", [](const py::array& dy, const py::array& x, Pair stride, const Padding& padding,
                                      Pair dilation, py::array& out) {
    const char* op = "conv2d_backward_weights";
    dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
      using T = decltype(tag);
      // out is dw: its shape is the kernel's.
      const Backward<T> a = backward_arrays<T>(dy, x, "x", out, false, stride, padding, dilation, op);
      if (a.s.batch == 0) {  // no pixels: a zero gradient
        std::fill(a.out, a.out + out.size(), T(0));
        return;
      }
      run_with_workspace(a.s, &cpu::conv2d_backward_weights_workspace_bytes<T>, [&](void* ws, size_t bytes, int team) {
        cpu::conv2d_backward_weights<T>(a.s, a.dy, a.in, a.out, ws, bytes, team);
      });
    });
  }, py::arg("dy"), py::arg("x"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("out"),
     "out (dw, HWIO) = the gradient of conv2d with respect to w.");

  // conv + bias + relu + 2x2 / stride-2 max-pool: fused where the direct kernels take the
  // shape (conv2d_direct.h), else the convolution into this thread's workspace and the pool
  // from there, so the full-size output is never a fresh array (a fresh 6.4 MB array, the
  // seed network's second layer at batch 64, cost a page fault per 4 KiB: the op took 2.2 ms
  // against 1.1 ms).  Returns False, touching nothing, when the 2x2 pool does not fit the
  // convolution's output (the caller composes conv2d and max_pool2d, which say why); y and
  // argmax are checked only when it fits.
  m.def("conv2d_relu_max_pool2d", [](const py::array& x, const py::array& w, const py::object& bias, Pair stride,
                                     const Padding& padding, Pair dilation, py::array& y, py::array& argmax) {
    const char* op = "conv2d_relu_max_pool2d";
    return dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = input<T>(x, op, "x");
      const T* wp = input<T>(w, op, "w");
      const auto s = conv_shape(dims4(x, op, "x"), dims4(w, op, "w"), stride, padding, dilation, op, "x", "w");
      const T* bp = optional_input<T>(bias, {s.out_c}, op, "b");
      if (s.out_h < 2 || s.out_w < 2) return false;
      const std::vector<int64_t> pooled = {s.batch, s.out_h / 2, s.out_w / 2, s.out_c};
      T* yp = output<T>(y, op, "y");
      require_shape(y, pooled, op, "y");
      int64_t* ap = output<int64_t>(argmax, op, "argmax");
      require_shape(argmax, pooled, op, "argmax");
      if (s.batch == 0) return true;
      if (cpu::conv2d_direct_fuses_max_pool<T>(s)) {
        run_with_workspace(s, &cpu::conv2d_direct_relu_max_pool_workspace_bytes<T>,
                           [&](void* ws, size_t bytes, int team) {
          cpu::conv2d_direct_relu_max_pool<T>(s, xp, wp, bp, yp, ap, ws, bytes, team);
        });
        return true;
      }
      // The workspace: the convolution's own, then (cache-line aligned) its relu'd output.
      // The output has at most (2p + 1)^2 / p^2 <= 9 times y's elements, which exist.
      const cpu::Pool2dShape ps{s.batch, s.out_h, s.out_w, s.out_c, s.out_h / 2, s.out_w / 2, 2, 2, 2, 2, 0, 0};
      const auto bytes = [](const cpu::Conv2dShape& c, int team) {
        const size_t conv = (cpu::conv2d_forward_workspace_bytes<T>(c, team) + 63) / 64 * 64;
        return conv + sizeof(T) * static_cast<size_t>(c.batch * c.out_h * c.out_w * c.out_c);
      };
      run_with_workspace(s, bytes, [&](void* ws, size_t total, int team) {
        const size_t conv = total - sizeof(T) * static_cast<size_t>(s.batch * s.out_h * s.out_w * s.out_c);
        T* z = reinterpret_cast<T*>(static_cast<unsigned char*>(ws) + conv);
        cpu::conv2d_forward<T>(s, xp, wp, bp, cpu::Activation::relu, z, ws, conv, team);
        cpu::max_pool2d_forward<T>(ps, z, yp, ap, false);
      });
      return true;
    });
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("y"), py::arg("argmax"),
     "y, argmax = max_pool2d(relu(conv2d(x, w) + bias), 2) (returns False if the pool does not fit).");
}

}  // namespace fastnn::python
