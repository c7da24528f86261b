// fastnn._cuda bindings of conv2d forward, backward-data and backward-weights (NHWC/HWIO,
// csrc/cuda/conv.cu): the output size recomputed from the inputs and the options (padding
// ((top, bottom), (left, right))), every buffer checked against it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <utility>
#include <vector>

#include "common/shapes.h"
#include "cuda/kernels.h"
#include "python/bindings_cuda.h"
#include "python/device_array.h"

namespace fastnn::python::device {

namespace {

namespace fc = fastnn::cuda;

using Padding = std::array<std::array<int64_t, 2>, 2>;  // ((top, bottom), (left, right))

// The convolution of x (n, h, w, c) with a kernel of shape w (kh, kw, c, o): options
// checked, output size recomputed from them (never taken from a buffer), every size
// within the kernels' ints.  The caller checks the output (or dy) against (n, ho, wo, o).
fc::ConvShape conv_shape(const DeviceArray& x, const DeviceArray& w, std::pair<int, int> stride,
                         const Padding& padding, std::pair<int, int> dilation,
                         const std::string& op, const char* x_name, const char* w_name) {
  require_ndim(x, 4, op, x_name);
  require_ndim(w, 4, op, w_name);
  const char* o = op.c_str();
  require_range(stride.first, 1, kMaxOption, o, "stride");
  require_range(stride.second, 1, kMaxOption, o, "stride");
  require_range(dilation.first, 1, kMaxOption, o, "dilation");
  require_range(dilation.second, 1, kMaxOption, o, "dilation");
  for (const auto& side : padding) {
    require_range(side[0], 0, kMaxOption, o, "padding");
    require_range(side[1], 0, kMaxOption, o, "padding");
  }
  if (w.shape[2] != x.shape[3]) {
    fail_value(op, std::string(w_name) + " and " + x_name + " disagree on input channels");
  }
  if (w.shape[0] < 1 || w.shape[1] < 1 || w.shape[2] < 1 || w.shape[3] < 1) {
    fail_value(op, std::string(w_name) + " must have non-empty kernel and channel axes");
  }
  const int64_t ho = window_output_size(x.shape[1], w.shape[0], stride.first, padding[0][0], padding[0][1],
                                            dilation.first, o, "row");
  const int64_t wo = window_output_size(x.shape[2], w.shape[1], stride.second, padding[1][0], padding[1][1],
                                            dilation.second, o, "column");
  fc::ConvShape s{};
  s.n = x.shape[0];
  s.h = as_int(x.shape[1], op, "the image height");
  s.w = as_int(x.shape[2], op, "the image width");
  s.c_in = as_int(x.shape[3], op, "the input channels");
  s.kh = as_int(w.shape[0], op, "the kernel height");
  s.kw = as_int(w.shape[1], op, "the kernel width");
  s.c_out = as_int(w.shape[3], op, "the output channels");
  s.ho = as_int(ho, op, "the output height");
  s.wo = as_int(wo, op, "the output width");
  s.stride_h = stride.first;
  s.stride_w = stride.second;
  s.pad_top = as_int(padding[0][0], op, "padding");
  s.pad_left = as_int(padding[1][0], op, "padding");
  s.dilation_h = dilation.first;
  s.dilation_w = dilation.second;
  return s;
}

std::vector<int64_t> conv_output_shape(const fc::ConvShape& s) { return {s.n, s.ho, s.wo, s.c_out}; }

void conv2d(py::handle x_obj, py::handle w_obj, py::handle b_obj, std::pair<int, int> stride,
            const Padding& padding, std::pair<int, int> dilation, int kind,
            py::handle y_obj, std::uintptr_t stream) {
  const std::string op = "conv2d";
  const DeviceArray x = device_array(x_obj, op, "x"), w = device_array(w_obj, op, "w");
  const DeviceArray y = device_array(y_obj, op, "out", true);
  const DType dt = float_dtype(x, op, "x", {{&w, "w"}, {&y, "out"}});
  const auto b = optional_array(b_obj, op, "b");
  const fc::ConvShape s = conv_shape(x, w, stride, padding, dilation, op, "x", "w");
  same_shape(y, conv_output_shape(s), op, "out");
  if (b) {
    same_dtype(*b, dt, op, "b");
    same_size(*b, s.c_out, op, "b");
  }
  if (kind < fc::kIdentity || kind > fc::kTanh) fail_value(op, "unknown activation");
  launch(op, y.size ? y.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::conv2d_forward<T>(x.ptr<T>(), w.ptr<T>(), b ? b->ptr<T>() : nullptr, kind,
                                 y.ptr<T>(), s, as_stream(stream));
  });
}

void conv2d_backward_data(py::handle dy_obj, py::handle w_obj, std::pair<int, int> stride,
                          const Padding& padding, std::pair<int, int> dilation,
                          py::handle dx_obj, std::uintptr_t stream) {
  const std::string op = "conv2d_backward_data";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), w = device_array(w_obj, op, "w");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy", {{&w, "w"}, {&dx, "out"}});
  const fc::ConvShape s = conv_shape(dx, w, stride, padding, dilation, op, "out", "w");
  same_shape(dy, conv_output_shape(s), op, "dy");
  launch(op, dx.size ? dx.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::conv2d_backward_data<T>(dy.ptr<T>(), w.ptr<T>(), dx.ptr<T>(), s,
                                       as_stream(stream));
  });
}

int64_t conv2d_backward_weights_splits(int64_t n, int h, int w, int c_in, int ho, int wo,
                                       int kh, int kw, int c_out) {
  const std::string op = "conv2d_backward_weights_splits";
  for (int64_t v : {n, int64_t(h), int64_t(w), int64_t(c_in), int64_t(ho), int64_t(wo), int64_t(kh), int64_t(kw),
                    int64_t(c_out)}) {
    if (v < 0) fail_value(op, "sizes must be non-negative");
  }
  fc::ConvShape s{};
  s.n = n; s.h = h; s.w = w; s.c_in = c_in; s.ho = ho; s.wo = wo; s.kh = kh; s.kw = kw;
  s.c_out = c_out;
  return fc::conv2d_backward_weights_splits(s);
}

void conv2d_backward_weights(py::handle dy_obj, py::handle x_obj, std::pair<int, int> stride,
                             const Padding& padding, std::pair<int, int> dilation,
                             py::handle dw_obj, py::handle workspace_obj,
                             std::uintptr_t stream) {
  const std::string op = "conv2d_backward_weights";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), x = device_array(x_obj, op, "x");
  const DeviceArray dw = device_array(dw_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy", {{&x, "x"}, {&dw, "out"}});
  const fc::ConvShape s = conv_shape(x, dw, stride, padding, dilation, op, "x", "out");
  same_shape(dy, conv_output_shape(s), op, "dy");
  const auto workspace = optional_array(workspace_obj, op, "workspace", true);
  int64_t splits = 1;
  if (workspace) {
    same_dtype(*workspace, dt, op, "workspace");
    if (dw.size == 0 || workspace->size % dw.size != 0) {
      fail_value(op, "workspace must hold whole copies of dw");
    }
    splits = workspace->size / dw.size;
  }
  launch(op, dw.size ? dw.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::conv2d_backward_weights<T>(dy.ptr<T>(), x.ptr<T>(), dw.ptr<T>(),
                                          workspace ? workspace->ptr<T>() : nullptr, splits,
                                          s, as_stream(stream));
  });
}

}  // namespace

void bind_conv(py::module_& m) {
  const py::arg stream("stream");
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b").none(true),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("kind"),
        py::arg("out"), stream);
  m.def("conv2d_backward_data", &conv2d_backward_data, py::arg("dy"), py::arg("w"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("out"), stream);
  m.def("conv2d_backward_weights_splits", &conv2d_backward_weights_splits, py::arg("n"),
        py::arg("h"), py::arg("w"), py::arg("c_in"), py::arg("ho"), py::arg("wo"),
        py::arg("kh"), py::arg("kw"), py::arg("c_out"));
  m.def("conv2d_backward_weights", &conv2d_backward_weights, py::arg("dy"), py::arg("x"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("out"),
        py::arg("workspace").none(true), stream);
}

}  // namespace fastnn::python::device
