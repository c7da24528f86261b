// Bindings for bias_backward, the softmax family and losses, dropout and the
// optimizer updates.  Outputs come from the Python caller and are checked
// (array_utils.h) before anything is written; the GIL is released around
// every kernel.
#include <vector>

#include "common/parallel.h"
#include "cpu/elementwise.h"
#include "python/array_utils.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace fastnn::python {

namespace {

// Class-index labels (int64, one per row) or float targets (rows x cols); returns
// the pointer pair with exactly one non-null.
template <typename T>
struct Labels {
  const int64_t* index = nullptr;
  const T* targets = nullptr;
};

template <typename T>
Labels<T> unpack_labels(const py::array& labels, int64_t rows, int64_t cols, const char* op) {
  Labels<T> out;
  if (labels.dtype().is(py::dtype::of<int64_t>())) {
    out.index = input<int64_t>(labels, op, "labels");
    require_shape(labels, {rows}, op, "labels");
    // ops.py checks the range; this guards callers that bypass it.
    for (int64_t r = 0; r < rows; ++r) {
      if (out.index[r] < 0 || out.index[r] >= cols) {
        fail_value(op, "labels", "must lie in [0, " + std::to_string(cols) + "), got " + std::to_string(out.index[r]));
      }
    }
  } else {
    if (!labels.dtype().is(py::dtype::of<T>())) {
      fail_type(op, "labels", std::string("must be int64 class indices or ") + dtype_name<T>() +
                                  " targets like the logits, got " + dtype_text(labels));
    }
    out.targets = input<T>(labels, op, "labels");
    require_shape(labels, {rows, cols}, op, "labels");
  }
  return out;
}

// A non-empty 2-D rows x cols matrix (the softmax losses).
void require_matrix(const py::array& a, const char* op, const char* name) {
  require_ndim(a, 2, op, name);
  if (a.shape(0) < 1 || a.shape(1) < 1) fail_value(op, name, "must not be empty, got shape " + shape_text(a));
}

// The softmax losses' arrays, checked: a rows x cols matrix read (`in_name`), an output of
// its shape (`out_name`), and the labels.
template <typename T>
struct LossArrays {
  const T* in;
  T* out;
  int64_t rows, cols;
  Labels<T> labels;
};

template <typename T>
LossArrays<T> loss_arrays(const py::array& in, const char* in_name, py::array& out, const char* out_name,
                          const py::array& labels, const char* op) {
  LossArrays<T> a;
  a.in = input<T>(in, op, in_name);
  require_matrix(in, op, in_name);
  a.rows = in.shape(0);
  a.cols = in.shape(1);
  a.out = output<T>(out, op, out_name);
  require_same_shape(in, out, op, out_name);
  a.labels = unpack_labels<T>(labels, a.rows, a.cols, op);
  return a;
}

// A mask the kernel reads or writes as bytes: bool, C-contiguous, of the shape of ref.
const uint8_t* mask_input(const py::array& mask, const py::array& ref, const char* op) {
  const bool* p = input<bool>(mask, op, "mask");
  require_same_shape(ref, mask, op, "mask");
  return reinterpret_cast<const uint8_t*>(p);
}

}  // namespace

void bind_elementwise(py::module_& m) {
  m.def("bias_backward", [](const py::array& dy, bool nchw, py::array& out) {
    const char* op = "bias_backward";
    dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
      using T = decltype(tag);
      const T* dyp = input<T>(dy, op, "dy");
      if (dy.ndim() < 1) fail_value(op, "dy", "must have a channel axis, got a 0-D array");
      const bool planes = nchw && dy.ndim() == 4;
      const int64_t channels = planes ? dy.shape(1) : dy.shape(dy.ndim() - 1);
      T* outp = output<T>(out, op, "out");
      require_shape(out, {channels}, op, "out");
      if (planes) {
        const int64_t batch = dy.shape(0), plane = dy.shape(2) * dy.shape(3);
        py::gil_scoped_release release;
        cpu::bias_backward_planes<T>(dyp, batch, channels, plane, outp);
        return 0;
      }
      const int64_t rows = channels ? dy.size() / channels : 0;
      const int team = get_num_threads();  // read once: sizes the partial sums and runs the kernel
      const size_t doubles = static_cast<size_t>(team) * static_cast<size_t>(cpu::bias_backward_stride(channels));
      const auto ws = thread_workspace().acquire(doubles * sizeof(double));
      py::gil_scoped_release release;
      cpu::bias_backward_rows<T>(dyp, rows, channels, static_cast<double*>(ws.data()), team, outp);
      return 0;
    });
  }, py::arg("dy"), py::arg("nchw"), py::arg("out"));

  m.def("softmax", [](const py::array& x, bool log, py::array& out) {
    const char* op = log ? "log_softmax" : "softmax";
    dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = input<T>(x, op, "x");
      T* yp = output<T>(out, op, "out");
      require_same_shape(x, out, op, "out");
      if (x.size() == 0) return 0;
      if (x.ndim() < 1) fail_value(op, "x", "must have a last axis, got a 0-D array");
      const int64_t cols = x.shape(x.ndim() - 1), rows = x.size() / cols;
      py::gil_scoped_release release;
      cpu::softmax_rows<T>(xp, yp, rows, cols, log);
      return 0;
    });
  }, py::arg("x"), py::arg("log"), py::arg("out"));

  m.def("softmax_cross_entropy", [](const py::array& logits, const py::array& labels, py::array& probs) {
    const char* op = "softmax_cross_entropy";
    return dispatch_float(dtype_of(logits, op, "logits"), [&](auto tag) {
      using T = decltype(tag);
      const LossArrays<T> a = loss_arrays<T>(logits, "logits", probs, "probs", labels, op);
      py::gil_scoped_release release;
      return cpu::softmax_cross_entropy<T>(a.in, a.labels.index, a.labels.targets, a.out, a.rows, a.cols);
    });
  }, py::arg("logits"), py::arg("labels"), py::arg("probs"));

  m.def("softmax_cross_entropy_backward",
        [](double dloss, const py::array& probs, const py::array& labels, py::array& out) {
    const char* op = "softmax_cross_entropy_backward";
    dispatch_float(dtype_of(probs, op, "probs"), [&](auto tag) {
      using T = decltype(tag);
      const LossArrays<T> a = loss_arrays<T>(probs, "probs", out, "out", labels, op);
      py::gil_scoped_release release;
      cpu::softmax_cross_entropy_backward<T>(dloss, a.in, a.labels.index, a.labels.targets, a.out, a.rows, a.cols);
    });
  }, py::arg("dloss"), py::arg("probs"), py::arg("labels"), py::arg("out"));

  m.def("mse_loss", [](const py::array& prediction, const py::array& target, py::array& grad) {
    const char* op = "mse_loss";
    return dispatch_float(dtype_of(prediction, op, "prediction"), [&](auto tag) {
      using T = decltype(tag);
      const T* pp = input<T>(prediction, op, "prediction");
      const T* tp = input<T>(target, op, "target");
      require_same_shape(prediction, target, op, "target");
      T* gp = output<T>(grad, op, "grad");
      require_same_shape(prediction, grad, op, "grad");
      if (prediction.ndim() < 1 || prediction.shape(0) < 1) {
        fail_value(op, "prediction", "must have a non-empty batch (first) axis, got shape " + shape_text(prediction));
      }
      const int64_t batch = prediction.shape(0), size = prediction.size();
      py::gil_scoped_release release;
      return cpu::mse_loss<T>(pp, tp, gp, size, batch);
    });
  }, py::arg("prediction"), py::arg("target"), py::arg("grad"));

  m.def("dropout", [](const py::array& x, uint64_t seed, uint32_t threshold, double scale, py::array& out,
                      py::array& mask) {
    const char* op = "dropout";
    dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = input<T>(x, op, "x");
      T* yp = output<T>(out, op, "out");
      require_same_shape(x, out, op, "out");
      auto* mp = reinterpret_cast<uint8_t*>(output<bool>(mask, op, "mask"));
      require_same_shape(x, mask, op, "mask");
      const int64_t size = x.size();
      py::gil_scoped_release release;
      cpu::dropout<T>(xp, yp, mp, size, seed, threshold, scale);
      return 0;
    });
  }, py::arg("x"), py::arg("seed"), py::arg("threshold"), py::arg("scale"), py::arg("out"), py::arg("mask"));

  m.def("dropout_backward", [](const py::array& dy, const py::array& mask, double scale, py::array& out) {
    const char* op = "dropout_backward";
    dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
      using T = decltype(tag);
      const T* dyp = input<T>(dy, op, "dy");
      const uint8_t* mp = mask_input(mask, dy, op);
      T* dxp = output<T>(out, op, "out");
      require_same_shape(dy, out, op, "out");
      const int64_t size = dy.size();
      py::gil_scoped_release release;
      cpu::dropout_backward<T>(dyp, mp, dxp, size, scale);
      return 0;
    });
  }, py::arg("dy"), py::arg("mask"), py::arg("scale"), py::arg("out"));

  m.def("sgd_update", [](py::array& param, py::array& grad, const py::object& velocity, double lr, double momentum,
                         double weight_decay, bool nesterov) {
    const char* op = "sgd_update";
    dispatch_float(dtype_of(param, op, "param"), [&](auto tag) {
      using T = decltype(tag);
      T* pp = output<T>(param, op, "param");
      T* gp = output<T>(grad, op, "grad");
      require_same_shape(param, grad, op, "grad");
      T* vp = optional_output<T>(velocity, param, op, "velocity");
      const int64_t size = param.size();
      py::gil_scoped_release release;
      cpu::sgd_update<T>(pp, gp, vp, size, lr, momentum, weight_decay, nesterov);
      return 0;
    });
  }, py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"),
     py::arg("weight_decay"), py::arg("nesterov"));

  m.def("adam_update", [](py::array& param, py::array& grad, py::array& m_state, py::array& v_state, double lr,
                          double beta1, double beta2, double eps, double weight_decay, double m_scale,
                          double v_scale, double grad_scale, double param_decay, const py::object& average,
                          double average_rate) {
    const char* op = "adam_update";
    dispatch_float(dtype_of(param, op, "param"), [&](auto tag) {
      using T = decltype(tag);
      T* pp = output<T>(param, op, "param");
      T* gp = output<T>(grad, op, "grad");
      require_same_shape(param, grad, op, "grad");
      T* mp = output<T>(m_state, op, "m");
      require_same_shape(param, m_state, op, "m");
      T* vp = output<T>(v_state, op, "v");
      require_same_shape(param, v_state, op, "v");
      T* ap = optional_output<T>(average, param, op, "average");
      const int64_t size = param.size();
      py::gil_scoped_release release;
      cpu::adam_update<T>(pp, gp, mp, vp, size, lr, beta1, beta2, eps, weight_decay, m_scale, v_scale, grad_scale,
                          param_decay, ap, average_rate);
      return 0;
    });
  }, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("m_scale"), py::arg("v_scale"),
     py::arg("grad_scale") = 1.0, py::arg("param_decay") = 0.0, py::arg("average") = py::none(),
     py::arg("average_rate") = 0.0);
}

}  // namespace fastnn::python
