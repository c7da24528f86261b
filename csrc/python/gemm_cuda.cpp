// fastnn._cuda binding of linear's epilogue (bias and activation, in place, after cuBLAS's
// product through CuPy; csrc/cuda/dense.cu).
#include <pybind11/pybind11.h>

#include "cuda/kernels.h"
#include "python/bindings_cuda.h"
#include "python/device_array.h"

namespace fastnn::python::device {

namespace {

namespace fc = fastnn::cuda;

void bias_activation(py::handle y_obj, py::handle b_obj, int kind, std::uintptr_t stream) {
  const std::string op = "linear";
  const DeviceArray y = device_array(y_obj, op, "out", true);
  require_ndim(y, 2, op, "out");
  const DType dt = float_dtype(y, op, "out");
  const auto b = optional_array(b_obj, op, "b");
  if (b) {
    same_dtype(*b, dt, op, "b");
    same_size(*b, y.shape[1], op, "b");
  }
  if (kind < fc::kIdentity || kind > fc::kTanh) fail_value(op, "unknown activation");
  launch(op, y.data, dt, [&](auto t) {
    using T = decltype(t);
    return fc::bias_activation<T>(y.ptr<T>(), b ? b->ptr<T>() : nullptr, y.shape[0],
                                  y.shape[1], kind, as_stream(stream));
  });
}

}  // namespace

void bind_gemm(py::module_& m) {
  const py::arg stream("stream");
  m.def("bias_activation", &bias_activation, py::arg("y"), py::arg("b").none(true),
        py::arg("kind"), stream);
}

}  // namespace fastnn::python::device
