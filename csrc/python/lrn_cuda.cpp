// fastnn._cuda bindings of local response normalisation across channels, NHWC or NCHW
// (csrc/cuda/lrn.cu).
#include <pybind11/pybind11.h>

#include "cuda/kernels.h"
#include "python/bindings_cuda.h"
#include "python/device_array.h"

namespace fastnn::python::device {

namespace {

namespace fc = fastnn::cuda;

fc::LrnShape lrn_shape(const DeviceArray& x, int depth_radius, double bias, double alpha,
                       double beta, bool channels_last, const std::string& op) {
  require_ndim(x, 4, op, "x");
  if (depth_radius < 0) fail_value(op, "depth_radius must be >= 0");
  fc::LrnShape s{};
  s.size = x.size;
  s.channels = as_int(channels_last ? x.shape[3] : x.shape[1], op, "the channels");
  s.inner = channels_last ? 1 : x.shape[2] * x.shape[3];
  s.depth_radius = depth_radius;
  s.bias = bias;
  s.alpha = alpha;
  s.beta = beta;
  return s;
}

void local_response_norm(py::handle x_obj, int depth_radius, double bias, double alpha,
                         double beta, bool channels_last, py::handle y_obj,
                         py::handle scale_obj, std::uintptr_t stream) {
  const std::string op = "local_response_norm";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "y", true);
  const DeviceArray scale = device_array(scale_obj, op, "scale", true);
  const DType dt = float_dtype(x, op, "x", {{&y, "y"}, {&scale, "scale"}});
  same_shape(y, x.shape, op, "y");
  same_shape(scale, x.shape, op, "scale");
  const fc::LrnShape s = lrn_shape(x, depth_radius, bias, alpha, beta, channels_last, op);
  launch(op, x.size ? x.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::lrn_forward<T>(x.ptr<T>(), y.ptr<T>(), scale.ptr<T>(), s, as_stream(stream));
  });
}

void local_response_norm_backward(py::handle dy_obj, py::handle x_obj, py::handle y_obj,
                                  py::handle scale_obj, int depth_radius, double bias,
                                  double alpha, double beta, bool channels_last,
                                  py::handle dx_obj, std::uintptr_t stream) {
  const std::string op = "local_response_norm_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), x = device_array(x_obj, op, "x");
  const DeviceArray y = device_array(y_obj, op, "y"), scale = device_array(scale_obj, op, "scale");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  for (const auto& [a, name] : Named{{&x, "x"}, {&y, "y"}, {&scale, "scale"}, {&dx, "out"}}) {
    same_dtype(*a, dt, op, name);
    same_shape(*a, dy.shape, op, name);
  }
  const fc::LrnShape s = lrn_shape(dy, depth_radius, bias, alpha, beta, channels_last, op);
  launch(op, dy.size ? dy.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::lrn_backward<T>(dy.ptr<T>(), x.ptr<T>(), y.ptr<T>(), scale.ptr<T>(),
                               dx.ptr<T>(), s, as_stream(stream));
  });
}

}  // namespace

void bind_lrn(py::module_& m) {
  const py::arg stream("stream");
  m.def("local_response_norm", &local_response_norm, py::arg("x"), py::arg("depth_radius"),
        py::arg("bias"), py::arg("alpha"), py::arg("beta"), py::arg("channels_last"),
        py::arg("y"), py::arg("scale"), stream);
  m.def("local_response_norm_backward", &local_response_norm_backward, py::arg("dy"),
        py::arg("x"), py::arg("y"), py::arg("scale"), py::arg("depth_radius"), py::arg("bias"),
        py::arg("alpha"), py::arg("beta"), py::arg("channels_last"), py::arg("out"), stream);
}

}  // namespace fastnn::python::device
