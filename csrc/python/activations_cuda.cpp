// fastnn._cuda bindings of relu/sigmoid/tanh forward and backward (csrc/cuda/activations.cu);
// the kind (fastnn._cuda.RELU, SIGMOID, TANH) picks the function and names the op.
#include <pybind11/pybind11.h>

#include "cuda/kernels.h"
#include "python/bindings_cuda.h"
#include "python/device_array.h"

namespace fastnn::python::device {

namespace {

namespace fc = fastnn::cuda;

void activation(int kind, py::handle x_obj, py::handle y_obj, std::uintptr_t stream) {
  static const char* names[] = {"identity", "relu", "sigmoid", "tanh"};
  if (kind < fc::kRelu || kind > fc::kTanh) throw py::value_error("activation: unknown kind");
  const std::string op = names[kind];
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "out", true);
  const DType dt = float_dtype(x, op, "x", {{&y, "out"}});
  same_size(y, x.size, op, "out");
  launch(op, x.data, dt, [&](auto t) {
    using T = decltype(t);
    return fc::activation_forward<T>(kind, x.ptr<T>(), y.ptr<T>(), x.size, as_stream(stream));
  });
}

void activation_backward(int kind, py::handle dy_obj, py::handle y_obj, py::handle dx_obj,
                         std::uintptr_t stream) {
  static const char* names[] = {"", "relu_backward", "sigmoid_backward", "tanh_backward"};
  if (kind < fc::kRelu || kind > fc::kTanh) throw py::value_error("activation_backward: unknown kind");
  const std::string op = names[kind];
  const DeviceArray dy = device_array(dy_obj, op, "dy"), y = device_array(y_obj, op, "y");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy", {{&y, "y"}, {&dx, "out"}});
  same_size(y, dy.size, op, "y");
  same_size(dx, dy.size, op, "out");
  launch(op, dy.data, dt, [&](auto t) {
    using T = decltype(t);
    return fc::activation_backward<T>(kind, dy.ptr<T>(), y.ptr<T>(), dx.ptr<T>(), dy.size,
                                      as_stream(stream));
  });
}

}  // namespace

void bind_activations(py::module_& m) {
  const py::arg stream("stream");
  m.def("activation", &activation, py::arg("kind"), py::arg("x"), py::arg("out"), stream);
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("dy"),
        py::arg("y"), py::arg("out"), stream);
}

}  // namespace fastnn::python::device
