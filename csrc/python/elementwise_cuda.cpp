// fastnn._cuda bindings of bias_backward (csrc/cuda/dense.cu), the softmax cross-entropy
// (losses.cu), dropout (dropout.cu) and the optimizer updates (optim.cu), as
// elementwise_cpu.cpp groups them for fastnn._C.
#include <pybind11/pybind11.h>

#include <utility>

#include "cuda/kernels.h"
#include "python/bindings_cuda.h"
#include "python/device_array.h"

namespace fastnn::python::device {

namespace {

namespace fc = fastnn::cuda;

// dy seen as (outer, channels, inner); partial holds (chunks, channels).
void bias_backward(py::handle dy_obj, int64_t outer, int64_t channels, int64_t inner,
                   py::handle partial_obj, py::handle out_obj, std::uintptr_t stream) {
  const std::string op = "bias_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy");
  const DeviceArray partial = device_array(partial_obj, op, "workspace", true);
  const DeviceArray out = device_array(out_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy", {{&partial, "workspace"}, {&out, "out"}});
  if (outer < 0 || channels < 0 || inner < 0) fail_value(op, "negative sizes");
  same_size(dy, checked_mul(checked_mul(outer, channels, op.c_str(), "dy's size"), inner, op.c_str(),
                                "dy's size"),
            op, "dy");
  same_size(out, channels, op, "out");
  if (channels == 0 || partial.size % channels != 0) {
    if (channels == 0) return;
    fail_value(op, "workspace must hold whole rows of channels");
  }
  const int64_t chunks = partial.size / channels;
  launch(op, out.data, dt, [&](auto t) {
    using T = decltype(t);
    return fc::bias_backward<T>(dy.ptr<T>(), outer, channels, inner, partial.ptr<T>(), chunks,
                                out.ptr<T>(), as_stream(stream));
  });
}

// Labels: (n,) int64 class indices or (n, classes) float targets of the logits' dtype.
std::pair<const int64_t*, const void*> labels_of(const DeviceArray& labels, DType dt, int64_t n,
                                                 int64_t classes, const std::string& op) {
  if (labels.dtype == DType::int64) {
    require_ndim(labels, 1, op, "labels");
    same_size(labels, n, op, "labels");
    return {labels.ptr<int64_t>(), nullptr};
  }
  same_dtype(labels, dt, op, "labels");
  same_shape(labels, {n, classes}, op, "labels");
  return {nullptr, labels.data};
}

void softmax_cross_entropy(py::handle logits_obj, py::handle labels_obj, py::handle probs_obj,
                           py::handle row_loss_obj, std::uintptr_t stream) {
  const std::string op = "softmax_cross_entropy";
  const DeviceArray logits = device_array(logits_obj, op, "logits");
  const DeviceArray labels = device_array(labels_obj, op, "labels");
  const DeviceArray probs = device_array(probs_obj, op, "probs", true);
  const DeviceArray row_loss = device_array(row_loss_obj, op, "row_loss", true);
  require_ndim(logits, 2, op, "logits");
  const DType dt = float_dtype(logits, op, "logits");
  const int64_t n = logits.shape[0], classes = logits.shape[1];
  same_dtype(probs, dt, op, "probs");
  same_shape(probs, logits.shape, op, "probs");
  same_dtype(row_loss, dt, op, "row_loss");
  same_size(row_loss, n, op, "row_loss");
  const auto [index, dense] = labels_of(labels, dt, n, classes, op);
  launch(op, logits.size ? logits.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::softmax_cross_entropy_forward<T>(logits.ptr<T>(), index,
                                                static_cast<const T*>(dense), probs.ptr<T>(),
                                                row_loss.ptr<T>(), n, classes,
                                                as_stream(stream));
  });
}

void softmax_cross_entropy_backward(double scale, py::handle probs_obj, py::handle labels_obj,
                                    py::handle dx_obj, std::uintptr_t stream) {
  const std::string op = "softmax_cross_entropy_backward";
  const DeviceArray probs = device_array(probs_obj, op, "probs");
  const DeviceArray labels = device_array(labels_obj, op, "labels");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  require_ndim(probs, 2, op, "probs");
  const DType dt = float_dtype(probs, op, "probs");
  const int64_t n = probs.shape[0], classes = probs.shape[1];
  same_dtype(dx, dt, op, "out");
  same_shape(dx, probs.shape, op, "out");
  const auto [index, dense] = labels_of(labels, dt, n, classes, op);
  launch(op, probs.size ? probs.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::softmax_cross_entropy_backward<T>(scale, probs.ptr<T>(), index,
                                                 static_cast<const T*>(dense), dx.ptr<T>(), n,
                                                 classes, as_stream(stream));
  });
}

void dropout(py::handle x_obj, std::uint32_t threshold, double scale, std::uint64_t seed,
             py::handle y_obj, py::handle mask_obj, std::uintptr_t stream) {
  const std::string op = "dropout";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "out", true);
  const DeviceArray mask = device_array(mask_obj, op, "mask", true);
  const DType dt = float_dtype(x, op, "x", {{&y, "out"}});
  same_dtype(mask, DType::boolean, op, "mask");
  same_size(y, x.size, op, "out");
  same_size(mask, x.size, op, "mask");
  launch(op, x.size ? x.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::dropout_forward<T>(x.ptr<T>(), y.ptr<T>(), mask.ptr<bool>(), x.size, seed,
                                  threshold, scale, as_stream(stream));
  });
}

void dropout_backward(py::handle dy_obj, py::handle mask_obj, double scale, py::handle dx_obj,
                      std::uintptr_t stream) {
  const std::string op = "dropout_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), mask = device_array(mask_obj, op, "mask");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(mask, DType::boolean, op, "mask");
  same_dtype(dx, dt, op, "out");
  same_size(mask, dy.size, op, "mask");
  same_size(dx, dy.size, op, "out");
  launch(op, dy.size ? dy.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::dropout_backward<T>(dy.ptr<T>(), mask.ptr<bool>(), dx.ptr<T>(), dy.size, scale,
                                   as_stream(stream));
  });
}

void sgd_update(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj, double lr,
                double momentum, double weight_decay, bool nesterov, std::uintptr_t stream) {
  const std::string op = "sgd_update";
  const DeviceArray param = device_array(param_obj, op, "param", true);
  const DeviceArray grad = device_array(grad_obj, op, "grad", true);
  const auto velocity = optional_array(velocity_obj, op, "velocity", true);
  const DType dt = float_dtype(param, op, "param", {{&grad, "grad"}});
  same_size(grad, param.size, op, "grad");
  if (velocity) {
    same_dtype(*velocity, dt, op, "velocity");
    same_size(*velocity, param.size, op, "velocity");
  } else if (momentum != 0.0) {
    fail_value(op, "velocity is needed when momentum != 0");
  }
  launch(op, param.size ? param.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::sgd_update<T>(param.ptr<T>(), grad.ptr<T>(),
                             velocity ? velocity->ptr<T>() : nullptr, param.size, lr, momentum,
                             weight_decay, nesterov, as_stream(stream));
  });
}

void adam_update(py::handle param_obj, py::handle grad_obj, py::handle m_obj, py::handle v_obj,
                 double lr, double beta1, double beta2, double eps, double weight_decay,
                 double m_scale, double v_scale, std::uintptr_t stream) {
  const std::string op = "adam_update";
  const DeviceArray param = device_array(param_obj, op, "param", true);
  const DeviceArray grad = device_array(grad_obj, op, "grad", true);
  const DeviceArray m = device_array(m_obj, op, "m", true), v = device_array(v_obj, op, "v", true);
  const DType dt = float_dtype(param, op, "param");
  for (const auto& [a, name] : Named{{&grad, "grad"}, {&m, "m"}, {&v, "v"}}) {
    same_dtype(*a, dt, op, name);
    same_size(*a, param.size, op, name);
  }
  launch(op, param.size ? param.data : nullptr, dt, [&](auto t) {
    using T = decltype(t);
    return fc::adam_update<T>(param.ptr<T>(), grad.ptr<T>(), m.ptr<T>(), v.ptr<T>(),
                              param.size, lr, beta1, beta2, eps, weight_decay, m_scale,
                              v_scale, as_stream(stream));
  });
}

}  // namespace

void bind_elementwise(py::module_& m) {
  const py::arg stream("stream");
  m.def("bias_backward_chunks", &fc::bias_backward_chunks, py::arg("per_channel"),
        py::arg("channels"));
  m.def("bias_backward", &bias_backward, py::arg("dy"), py::arg("outer"), py::arg("channels"),
        py::arg("inner"), py::arg("workspace"), py::arg("out"), stream);
  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"),
        py::arg("probs"), py::arg("row_loss"), stream);
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("scale"),
        py::arg("probs"), py::arg("labels"), py::arg("out"), stream);
  m.def("dropout", &dropout, py::arg("x"), py::arg("threshold"), py::arg("scale"),
        py::arg("seed"), py::arg("out"), py::arg("mask"), stream);
  m.def("dropout_backward", &dropout_backward, py::arg("dy"), py::arg("mask"), py::arg("scale"),
        py::arg("out"), stream);
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"),
        py::arg("velocity").none(true), py::arg("lr"), py::arg("momentum"),
        py::arg("weight_decay"), py::arg("nesterov"), stream);
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("m_scale"), py::arg("v_scale"), stream);
}

}  // namespace fastnn::python::device
