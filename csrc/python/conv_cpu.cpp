// Bindings for conv2d forward, backward-data and backward-weights (NHWC/HWIO;
// fastnn/backends/cpu_kernels/conv.py handles NCHW at the boundary).  Shapes are
// checked here against each other so that a caller bypassing fastnn.ops gets a
// ValueError, never an out-of-bounds access.
#include <array>
#include <string>

#include <pybind11/stl.h>

#include "common/parallel.h"
#include "cpu/conv2d.h"
#include "cpu/conv2d_direct.h"
#include "python/array_utils.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace fastnn::python {

namespace {

using Pair = std::array<int64_t, 2>;

cpu::Activation parse_activation(const py::object& activation) {
  if (activation.is_none()) return cpu::Activation::none;
  const auto name = activation.cast<std::string>();
  if (name == "relu") return cpu::Activation::relu;
  if (name == "sigmoid") return cpu::Activation::sigmoid;
  if (name == "tanh") return cpu::Activation::tanh;
  throw py::value_error("conv2d: unknown activation '" + name + "'");
}

void require_shape(const py::array& a, std::array<int64_t, 4> shape, const char* op, const char* name) {
  require_contiguous(a, op, name);
  if (a.ndim() != 4) throw py::value_error(std::string(op) + ": " + name + " must be 4-D");
  for (int i = 0; i < 4; ++i) {
    if (a.shape(i) != shape[i]) throw py::value_error(std::string(op) + ": " + name + " has the wrong shape");
  }
}

// Shape from x (n,h,w,c), w (kh,kw,c,o), y (n,oh,ow,o) and the options.
cpu::Conv2dShape make_shape(const std::array<int64_t, 4>& x, const std::array<int64_t, 4>& w, Pair out_hw,
                            Pair stride, Pair pad_top_left, Pair dilation, const char* op) {
  if (w[2] != x[3]) throw py::value_error(std::string(op) + ": w and x disagree on input channels");
  cpu::Conv2dShape s{x[0], x[1], x[2], x[3], w[0], w[1], w[3], out_hw[0], out_hw[1],
                     stride[0], stride[1], pad_top_left[0], pad_top_left[1], dilation[0], dilation[1]};
  try {
    cpu::check_conv2d_shape(s);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string(op) + ": " + e.what());
  }
  return s;
}

std::array<int64_t, 4> dims(const py::array& a, const char* op, const char* name) {
  if (a.ndim() != 4) throw py::value_error(std::string(op) + ": " + name + " must be 4-D");
  return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d", [](const py::array& x, const py::array& w, const py::object& bias, Pair stride,
                     Pair pad_top_left, Pair dilation, const py::object& activation, py::array& out) {
    const char* op = "conv2d";
    const DType dt = dtype_of(x, op, "x");
    require_contiguous(x, op, "x");
    require_contiguous(w, op, "w");
    if (dtype_of(w, op, "w") != dt || dtype_of(out, op, "out") != dt) throw py::type_error("conv2d: dtypes differ");
    const auto xd = dims(x, op, "x"), wd = dims(w, op, "w"), yd = dims(out, op, "out");
    const auto s = make_shape(xd, wd, {yd[1], yd[2]}, stride, pad_top_left, dilation, op);
    require_shape(out, {s.batch, s.out_h, s.out_w, s.out_c}, op, "out");
    require_writeable(out, op, "out");
    py::array b;
    if (!bias.is_none()) {
      b = bias.cast<py::array>();
      require_contiguous(b, op, "b");
      if (dtype_of(b, op, "b") != dt || b.size() != s.out_c) throw py::value_error("conv2d: bias has the wrong size");
    }
    const cpu::Activation act = parse_activation(activation);
    if (s.batch == 0) return;
    const int threads = get_num_threads();
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const size_t bytes = cpu::conv2d_forward_workspace_bytes<T>(s, threads);
      void* ws = thread_workspace().get(bytes);
      const T* xp = in_ptr<T>(x);
      const T* wp = in_ptr<T>(w);
      const T* bp = bias.is_none() ? nullptr : in_ptr<T>(b);
      T* yp = out_ptr<T>(out);
      py::gil_scoped_release release;
      cpu::conv2d_forward<T>(s, xp, wp, bp, act, yp, ws, bytes, threads);
      return 0;
    });
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("pad_top_left"), py::arg("dilation"),
     py::arg("activation"), py::arg("out"));

  m.def("conv2d_backward_data", [](const py::array& dy, const py::array& w, Pair stride, Pair pad_top_left,
                                   Pair dilation, py::array& out) {
    const char* op = "conv2d_backward_data";
    const DType dt = dtype_of(dy, op, "dy");
    require_contiguous(dy, op, "dy");
    require_contiguous(w, op, "w");
    if (dtype_of(w, op, "w") != dt || dtype_of(out, op, "out") != dt) throw py::type_error(std::string(op) + ": dtypes differ");
    const auto xd = dims(out, op, "out"), wd = dims(w, op, "w"), yd = dims(dy, op, "dy");
    const auto s = make_shape(xd, wd, {yd[1], yd[2]}, stride, pad_top_left, dilation, op);
    require_shape(dy, {s.batch, s.out_h, s.out_w, s.out_c}, op, "dy");
    require_shape(out, xd, op, "out");
    require_writeable(out, op, "out");
    if (s.batch == 0) return;
    const int threads = get_num_threads();
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const size_t bytes = cpu::conv2d_backward_data_workspace_bytes<T>(s, threads);
      void* ws = thread_workspace().get(bytes);
      const T* dyp = in_ptr<T>(dy);
      const T* wp = in_ptr<T>(w);
      T* dxp = out_ptr<T>(out);
      py::gil_scoped_release release;
      cpu::conv2d_backward_data<T>(s, dyp, wp, dxp, ws, bytes, threads);
      return 0;
    });
  }, py::arg("dy"), py::arg("w"), py::arg("stride"), py::arg("pad_top_left"), py::arg("dilation"), py::arg("out"));

  m.def("conv2d_backward_weights", [](const py::array& dy, const py::array& x, Pair stride, Pair pad_top_left,
                                      Pair dilation, py::array& out) {
    const char* op = "conv2d_backward_weights";
    const DType dt = dtype_of(dy, op, "dy");
    require_contiguous(dy, op, "dy");
    require_contiguous(x, op, "x");
    if (dtype_of(x, op, "x") != dt || dtype_of(out, op, "out") != dt) throw py::type_error(std::string(op) + ": dtypes differ");
    const auto xd = dims(x, op, "x"), wd = dims(out, op, "out"), yd = dims(dy, op, "dy");
    const auto s = make_shape(xd, wd, {yd[1], yd[2]}, stride, pad_top_left, dilation, op);
    require_shape(dy, {s.batch, s.out_h, s.out_w, s.out_c}, op, "dy");
    require_writeable(out, op, "out");
    const int threads = get_num_threads();
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const size_t bytes = cpu::conv2d_backward_weights_workspace_bytes<T>(s, threads);
      void* ws = thread_workspace().get(bytes);
      const T* dyp = in_ptr<T>(dy);
      const T* xp = in_ptr<T>(x);
      T* dwp = out_ptr<T>(out);
      py::gil_scoped_release release;
      cpu::conv2d_backward_weights<T>(s, dyp, xp, dwp, ws, bytes, threads);
      return 0;
    });
  }, py::arg("dy"), py::arg("x"), py::arg("stride"), py::arg("pad_top_left"), py::arg("dilation"), py::arg("out"));

  // Fused conv + bias + relu + 2x2 / stride-2 max-pool (conv2d_direct.h).  Returns
  // False, touching nothing, when this shape has no fused kernel (the caller composes
  // conv2d and max_pool2d instead); y and argmax are checked only when it has one.
  m.def("conv2d_relu_max_pool2d", [](const py::array& x, const py::array& w, const py::object& bias, Pair stride,
                                     Pair pad_top_left, Pair dilation, Pair conv_out_hw, py::array& y,
                                     py::array& argmax) {
    const char* op = "conv2d_relu_max_pool2d";
    const DType dt = dtype_of(x, op, "x");
    require_contiguous(x, op, "x");
    require_contiguous(w, op, "w");
    if (dtype_of(w, op, "w") != dt) throw py::type_error(std::string(op) + ": dtypes differ");
    const auto s = make_shape(dims(x, op, "x"), dims(w, op, "w"), conv_out_hw, stride, pad_top_left, dilation, op);
    py::array b;
    if (!bias.is_none()) {
      b = bias.cast<py::array>();
      require_contiguous(b, op, "b");
      if (dtype_of(b, op, "b") != dt || b.size() != s.out_c) throw py::value_error(std::string(op) + ": bias has the wrong size");
    }
    const int threads = get_num_threads();
    return dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      if (!cpu::conv2d_direct_fuses_max_pool<T>(s)) return false;
      if (dtype_of(y, op, "y") != dt) throw py::type_error(std::string(op) + ": dtypes differ");
      require_shape(y, {s.batch, s.out_h / 2, s.out_w / 2, s.out_c}, op, "y");
      require_writeable(y, op, "y");
      if (!argmax.dtype().is(py::dtype::of<int64_t>())) throw py::type_error(std::string(op) + ": argmax must be int64");
      require_shape(argmax, {s.batch, s.out_h / 2, s.out_w / 2, s.out_c}, op, "argmax");
      require_writeable(argmax, op, "argmax");
      if (s.batch == 0) return true;
      const size_t bytes = cpu::conv2d_direct_relu_max_pool_workspace_bytes<T>(s, threads);
      void* ws = thread_workspace().get(bytes);
      const T* xp = in_ptr<T>(x);
      const T* wp = in_ptr<T>(w);
      const T* bp = bias.is_none() ? nullptr : in_ptr<T>(b);
      T* yp = out_ptr<T>(y);
      auto* ap = static_cast<int64_t*>(argmax.mutable_data());
      py::gil_scoped_release release;
      cpu::conv2d_direct_relu_max_pool<T>(s, xp, wp, bp, yp, ap, ws, bytes, threads);
      return true;
    });
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("pad_top_left"), py::arg("dilation"),
     py::arg("conv_out_hw"), py::arg("y"), py::arg("argmax"));
}

}  // namespace fastnn::python
