// Bindings for bias_backward, the softmax family and losses, dropout and the
// optimizer updates.  Outputs come from the Python caller; the GIL is released
// around every kernel.
#include <vector>

#include "common/parallel.h"
#include "cpu/elementwise.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

namespace {

void require_float_like(const py::array& a, DType dt, const char* op, const char* name) {
  if (dtype_of(a, op, name) != dt) throw py::type_error(std::string(op) + ": " + name + " has the wrong dtype");
  require_contiguous(a, op, name);
}

void require_output(const py::array& a, DType dt, py::ssize_t size, const char* op, const char* name) {
  require_float_like(a, dt, op, name);
  require_writeable(a, op, name);
  if (a.size() != size) throw py::value_error(std::string(op) + ": " + name + " has the wrong size");
}

// Class-index labels (int64, one per row) or float targets (rows x cols); returns
// the pointer pair with exactly one non-null.
struct Labels {
  const int64_t* index = nullptr;
  const void* targets = nullptr;
};

Labels unpack_labels(const py::array& labels, DType dt, int64_t rows, int64_t cols, const char* op) {
  Labels out;
  require_contiguous(labels, op, "labels");
  if (labels.dtype().is(py::dtype::of<int64_t>())) {
    if (labels.size() != rows) throw py::value_error(std::string(op) + ": labels has the wrong size");
    out.index = static_cast<const int64_t*>(labels.data());
    // ops.py checks the range; this guards callers that bypass it.
    for (int64_t r = 0; r < rows; ++r) {
      if (out.index[r] < 0 || out.index[r] >= cols) {
        throw py::value_error(std::string(op) + ": label out of range");
      }
    }
  } else {
    if (dtype_of(labels, op, "labels") != dt || labels.size() != rows * cols) {
      throw py::value_error(std::string(op) + ": labels must be int64 indices or targets like the logits");
    }
    out.targets = labels.data();
  }
  return out;
}

int64_t last_dim(const py::array& a, const char* op) {
  if (a.ndim() < 1 || a.shape(a.ndim() - 1) < 1) throw py::value_error(std::string(op) + ": empty last axis");
  return a.shape(a.ndim() - 1);
}

}  // namespace

void bind_elementwise(py::module_& m) {
  m.def("bias_backward", [](const py::array& dy, bool nchw, py::array& out) {
    const char* op = "bias_backward";
    const DType dt = dtype_of(dy, op, "dy");
    require_contiguous(dy, op, "dy");
    const bool planes = nchw && dy.ndim() == 4;
    const int64_t channels = planes ? dy.shape(1) : (dy.ndim() ? dy.shape(dy.ndim() - 1) : 0);
    require_output(out, dt, channels, op, "out");
    const int64_t rows = channels ? dy.size() / channels : 0;
    const int64_t team = get_num_threads();  // read once: sizes the workspace and runs the kernel
    thread_local std::vector<double> workspace;
    if (!planes) workspace.resize(static_cast<size_t>(team * cpu::bias_backward_stride(channels)));
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* dyp = in_ptr<T>(dy);
      T* outp = out_ptr<T>(out);
      py::gil_scoped_release release;
      if (planes) {
        cpu::bias_backward_planes<T>(dyp, dy.shape(0), channels, dy.shape(2) * dy.shape(3), outp);
      } else {
        cpu::bias_backward_rows<T>(dyp, rows, channels, workspace.data(), team, outp);
      }
      return 0;
    });
  }, py::arg("dy"), py::arg("nchw"), py::arg("out"));

  m.def("softmax", [](const py::array& x, bool log, py::array& out) {
    const char* op = log ? "log_softmax" : "softmax";
    const DType dt = dtype_of(x, op, "x");
    require_contiguous(x, op, "x");
    require_output(out, dt, x.size(), op, "out");
    if (x.size() == 0) return;
    const int64_t cols = last_dim(x, op);
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* xp = in_ptr<T>(x);
      T* yp = out_ptr<T>(out);
      py::gil_scoped_release release;
      cpu::softmax_rows<T>(xp, yp, x.size() / cols, cols, log);
      return 0;
    });
  }, py::arg("x"), py::arg("log"), py::arg("out"));

  m.def("softmax_cross_entropy", [](const py::array& logits, const py::array& labels, py::array& probs) {
    const char* op = "softmax_cross_entropy";
    const DType dt = dtype_of(logits, op, "logits");
    require_contiguous(logits, op, "logits");
    if (logits.ndim() != 2 || logits.shape(0) < 1) throw py::value_error(std::string(op) + ": logits must be 2-D");
    const int64_t rows = logits.shape(0), cols = last_dim(logits, op);
    require_output(probs, dt, logits.size(), op, "probs");
    const Labels lab = unpack_labels(labels, dt, rows, cols, op);
    return dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* xp = in_ptr<T>(logits);
      T* pp = out_ptr<T>(probs);
      py::gil_scoped_release release;
      return cpu::softmax_cross_entropy<T>(xp, lab.index, static_cast<const T*>(lab.targets), pp, rows, cols);
    });
  }, py::arg("logits"), py::arg("labels"), py::arg("probs"));

  m.def("softmax_cross_entropy_backward",
        [](double dloss, const py::array& probs, const py::array& labels, py::array& out) {
    const char* op = "softmax_cross_entropy_backward";
    const DType dt = dtype_of(probs, op, "probs");
    require_contiguous(probs, op, "probs");
    if (probs.ndim() != 2 || probs.shape(0) < 1) throw py::value_error(std::string(op) + ": probs must be 2-D");
    const int64_t rows = probs.shape(0), cols = last_dim(probs, op);
    require_output(out, dt, probs.size(), op, "out");
    const Labels lab = unpack_labels(labels, dt, rows, cols, op);
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* pp = in_ptr<T>(probs);
      T* dp = out_ptr<T>(out);
      py::gil_scoped_release release;
      cpu::softmax_cross_entropy_backward<T>(dloss, pp, lab.index, static_cast<const T*>(lab.targets), dp, rows,
                                             cols);
      return 0;
    });
  }, py::arg("dloss"), py::arg("probs"), py::arg("labels"), py::arg("out"));

  m.def("mse_loss", [](const py::array& prediction, const py::array& target, py::array& grad) {
    const char* op = "mse_loss";
    const DType dt = dtype_of(prediction, op, "prediction");
    require_same(prediction, target, op, "prediction", "target");
    require_contiguous(prediction, op, "prediction");
    require_contiguous(target, op, "target");
    require_output(grad, dt, prediction.size(), op, "grad");
    if (prediction.ndim() < 1 || prediction.shape(0) < 1) throw py::value_error(std::string(op) + ": empty batch");
    const int64_t batch = prediction.shape(0);
    return dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* pp = in_ptr<T>(prediction);
      const T* tp = in_ptr<T>(target);
      T* gp = out_ptr<T>(grad);
      py::gil_scoped_release release;
      return cpu::mse_loss<T>(pp, tp, gp, prediction.size(), batch);
    });
  }, py::arg("prediction"), py::arg("target"), py::arg("grad"));

  m.def("dropout", [](const py::array& x, uint64_t seed, uint32_t threshold, double scale, py::array& out,
                      py::array& mask) {
    const char* op = "dropout";
    const DType dt = dtype_of(x, op, "x");
    require_contiguous(x, op, "x");
    require_output(out, dt, x.size(), op, "out");
    if (!mask.dtype().is(py::dtype::of<bool>()) || mask.size() != x.size()) {
      throw py::type_error(std::string(op) + ": mask must be bool with the size of x");
    }
    require_contiguous(mask, op, "mask");
    require_writeable(mask, op, "mask");
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* xp = in_ptr<T>(x);
      T* yp = out_ptr<T>(out);
      auto* mp = static_cast<uint8_t*>(mask.mutable_data());
      py::gil_scoped_release release;
      cpu::dropout<T>(xp, yp, mp, x.size(), seed, threshold, scale);
      return 0;
    });
  }, py::arg("x"), py::arg("seed"), py::arg("threshold"), py::arg("scale"), py::arg("out"), py::arg("mask"));

  m.def("dropout_backward", [](const py::array& dy, const py::array& mask, double scale, py::array& out) {
    const char* op = "dropout_backward";
    const DType dt = dtype_of(dy, op, "dy");
    require_contiguous(dy, op, "dy");
    require_output(out, dt, dy.size(), op, "out");
    if (!mask.dtype().is(py::dtype::of<bool>()) || mask.size() != dy.size()) {
      throw py::type_error(std::string(op) + ": mask must be bool with the size of dy");
    }
    require_contiguous(mask, op, "mask");
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      const T* dyp = in_ptr<T>(dy);
      const auto* mp = static_cast<const uint8_t*>(mask.data());
      T* dxp = out_ptr<T>(out);
      py::gil_scoped_release release;
      cpu::dropout_backward<T>(dyp, mp, dxp, dy.size(), scale);
      return 0;
    });
  }, py::arg("dy"), py::arg("mask"), py::arg("scale"), py::arg("out"));

  m.def("sgd_update", [](py::array& param, py::array& grad, py::object velocity, double lr, double momentum,
                         double weight_decay, bool nesterov) {
    const char* op = "sgd_update";
    const DType dt = dtype_of(param, op, "param");
    require_output(param, dt, param.size(), op, "param");
    require_output(grad, dt, param.size(), op, "grad");
    py::array vel;
    if (!velocity.is_none()) {
      vel = velocity.cast<py::array>();
      require_output(vel, dt, param.size(), op, "velocity");
    }
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      T* pp = out_ptr<T>(param);
      T* gp = out_ptr<T>(grad);
      T* vp = velocity.is_none() ? nullptr : out_ptr<T>(vel);
      py::gil_scoped_release release;
      cpu::sgd_update<T>(pp, gp, vp, param.size(), lr, momentum, weight_decay, nesterov);
      return 0;
    });
  }, py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"),
     py::arg("weight_decay"), py::arg("nesterov"));

  m.def("adam_update", [](py::array& param, py::array& grad, py::array& m_state, py::array& v_state, double lr,
                          double beta1, double beta2, double eps, double weight_decay, double m_scale,
                          double v_scale) {
    const char* op = "adam_update";
    const DType dt = dtype_of(param, op, "param");
    require_output(param, dt, param.size(), op, "param");
    require_output(grad, dt, param.size(), op, "grad");
    require_output(m_state, dt, param.size(), op, "m");
    require_output(v_state, dt, param.size(), op, "v");
    dispatch_float(dt, [&](auto tag) {
      using T = decltype(tag);
      T* pp = out_ptr<T>(param);
      T* gp = out_ptr<T>(grad);
      T* mp = out_ptr<T>(m_state);
      T* vp = out_ptr<T>(v_state);
      py::gil_scoped_release release;
      cpu::adam_update<T>(pp, gp, mp, vp, param.size(), lr, beta1, beta2, eps, weight_decay, m_scale, v_scale);
      return 0;
    });
  }, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("m_scale"), py::arg("v_scale"));
}

}  // namespace fastnn::python
