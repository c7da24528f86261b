// fastnn._cuda bindings of max and average pooling, forward and backward, NHWC or NCHW
// (csrc/cuda/pool.cu): the output size recomputed from the window options and checked
// against the output (or dy).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <utility>
#include <vector>

#include "common/shapes.h"
#include "cuda/kernels.h"
#include "python/bindings_cuda.h"
#include "python/device_array.h"

namespace fastnn::python::device {

namespace {

namespace fc = fastnn::cuda;

// The pooling of x (the input; dx for the backward) into y (the output; dy): options
// checked (pad < kernel, so every window of an image with rows and columns holds a real
// pixel), the output size recomputed and compared with y.
fc::PoolShape pool_shape(const DeviceArray& x, const DeviceArray& y, std::pair<int, int> kernel,
                         std::pair<int, int> stride, std::pair<int, int> padding,
                         bool channels_last, const std::string& op) {
  require_ndim(x, 4, op, "x");
  require_ndim(y, 4, op, "y");
  const char* o = op.c_str();
  require_pool_options(kernel, stride, padding, o);
  fc::PoolShape s{};
  s.channels_last = channels_last;
  s.n = x.shape[0];
  const int hd = channels_last ? 1 : 2, wd = channels_last ? 2 : 3, cd = channels_last ? 3 : 1;
  if (x.shape[hd] < 1 || x.shape[wd] < 1) fail_value(op, "the image must have at least one row and one column");
  s.h = as_int(x.shape[hd], op, "the image height");
  s.w = as_int(x.shape[wd], op, "the image width");
  s.c = as_int(x.shape[cd], op, "the channels");
  s.kh = kernel.first;
  s.kw = kernel.second;
  s.stride_h = stride.first;
  s.stride_w = stride.second;
  s.pad_h = padding.first;
  s.pad_w = padding.second;
  s.ho = as_int(window_output_size(s.h, s.kh, s.stride_h, s.pad_h, s.pad_h, 1, o, "row"), op, "the output height");
  s.wo = as_int(window_output_size(s.w, s.kw, s.stride_w, s.pad_w, s.pad_w, 1, o, "column"), op,
                "the output width");
  std::vector<int64_t> expected(4);
  expected[0] = s.n;
  expected[hd] = s.ho;
  expected[wd] = s.wo;
  expected[cd] = s.c;
  same_shape(y, expected, op, "the output");
  return s;
}

void max_pool2d(py::handle x_obj, std::pair<int, int> kernel, std::pair<int, int> stride,
                std::pair<int, int> padding, bool channels_last, py::handle y_obj,
                py::handle argmax_obj, std::uintptr_t stream) {
  const std::string op = "max_pool2d";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "y", true);
  const DeviceArray argmax = device_array(argmax_obj, op, "argmax", true);
  const DType dt = float_dtype(x, op, "x", {{&y, "y"}});
  same_dtype(argmax, DType::int64, op, "argmax");
  const fc::PoolShape s = pool_shape(x, y, kernel, stride, padding, channels_last, op);
  same_shape(argmax, y.shape, op, "argmax");
  launch(op, y.size ? y.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::max_pool2d_forward<T>(x.ptr<T>(), y.ptr<T>(), argmax.ptr<int64_t>(), s,
                                     as_stream(stream));
  });
}

void max_pool2d_backward(py::handle dy_obj, py::handle argmax_obj, py::handle dx_obj,
                         std::uintptr_t stream) {
  const std::string op = "max_pool2d_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy");
  const DeviceArray argmax = device_array(argmax_obj, op, "argmax");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(argmax, DType::int64, op, "argmax");
  same_dtype(dx, dt, op, "out");
  same_size(argmax, dy.size, op, "argmax");
  launch(op, dx.size ? dx.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::max_pool2d_backward<T>(dy.ptr<T>(), argmax.ptr<int64_t>(), dy.size,
                                      dx.ptr<T>(), dx.size, as_stream(stream));
  });
}

void avg_pool2d(py::handle x_obj, std::pair<int, int> kernel, std::pair<int, int> stride,
                std::pair<int, int> padding, bool channels_last, bool count_include_pad,
                py::handle y_obj, std::uintptr_t stream) {
  const std::string op = "avg_pool2d";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "out", true);
  const DType dt = float_dtype(x, op, "x", {{&y, "out"}});
  const fc::PoolShape s = pool_shape(x, y, kernel, stride, padding, channels_last, op);
  launch(op, y.size ? y.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::avg_pool2d_forward<T>(x.ptr<T>(), y.ptr<T>(), count_include_pad, s,
                                     as_stream(stream));
  });
}

void avg_pool2d_backward(py::handle dy_obj, std::pair<int, int> kernel,
                         std::pair<int, int> stride, std::pair<int, int> padding,
                         bool channels_last, bool count_include_pad, py::handle dx_obj,
                         std::uintptr_t stream) {
  const std::string op = "avg_pool2d_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy", {{&dx, "out"}});
  const fc::PoolShape s = pool_shape(dx, dy, kernel, stride, padding, channels_last, op);
  launch(op, dx.size ? dx.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::avg_pool2d_backward<T>(dy.ptr<T>(), dx.ptr<T>(), count_include_pad, s,
                                      as_stream(stream));
  });
}

}  // namespace

void bind_pool(py::module_& m) {
  const py::arg stream("stream");
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("channels_last"), py::arg("y"), py::arg("argmax"), stream);
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dy"), py::arg("argmax"),
        py::arg("out"), stream);
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("channels_last"), py::arg("count_include_pad"),
        py::arg("out"), stream);
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("channels_last"),
        py::arg("count_include_pad"), py::arg("out"), stream);
}

}  // namespace fastnn::python::device
