// Bindings for local response normalisation over the last (channel) axis.
// Python allocates y, scale and dx; the binding checks them (array_utils.h),
// takes the kernels' small workspace (padded channel rows per task) from the
// thread's workspace and releases the GIL around the compute.
#include <algorithm>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "cpu/lrn.h"
#include "python/array_utils.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace fastnn::python {

static void check_options(const char* op, int64_t depth_radius, double bias, double alpha, double beta) {
  require_range(depth_radius, 0, kMaxOption, op, "depth_radius");
  if (!(bias > 0) || !(alpha >= 0) || !(beta >= 0)) {
    throw py::value_error(std::string(op) + ": need bias > 0, alpha >= 0, beta >= 0 (finite or inf), got bias " +
                          std::to_string(bias) + ", alpha " + std::to_string(alpha) + ", beta " +
                          std::to_string(beta));
  }
}

static int64_t channel_count(const py::array& x, const char* op) {
  if (x.ndim() < 1) fail_value(op, "x", "must have a channel (last) axis, got a 0-D array");
  return x.shape(x.ndim() - 1);
}

// One call's split of an image batch into pixels x channels, its team size (the thread count,
// read once) and its zeroed workspace, shared by the forward and the backward.
template <typename T>
struct LrnPlan {
  LrnPlan(const py::array& a, int64_t depth_radius, const char* op)
      : channels(channel_count(a, op)),
        pixels(channels == 0 ? 0 : a.size() / channels),
        team(get_num_threads()),
        size(cpu::lrn_workspace_size<T>(pixels, channels, depth_radius, team)),
        lease(thread_workspace().acquire(static_cast<size_t>(size) * sizeof(T))) {
    std::fill_n(workspace(), size, T(0));  // as a fresh buffer: every call alike
  }
  T* workspace() const { return static_cast<T*>(lease.data()); }

  int64_t channels, pixels;
  int team;
  int64_t size;
  Workspace::Lease lease;
};

static void lrn(const py::array& x, py::array& y, py::array& scale, int64_t depth_radius, double bias,
                double alpha, double beta) {
  const char* op = "local_response_norm";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = input<T>(x, op, "x");
    T* yp = output<T>(y, op, "y");
    require_same_shape(x, y, op, "y");
    T* sp = output<T>(scale, op, "scale");
    require_same_shape(x, scale, op, "scale");
    check_options(op, depth_radius, bias, alpha, beta);
    const auto plan = LrnPlan<T>(x, depth_radius, op);
    py::gil_scoped_release release;
    cpu::lrn_forward<T>(xp, yp, sp, plan.pixels, plan.channels, depth_radius, T(bias), T(alpha),
                        T(beta), plan.workspace(), plan.size, plan.team);
  });
}

static void lrn_backward(const py::array& dy, const py::array& x, const py::array& y, const py::array& scale,
                         py::array& dx, int64_t depth_radius, double alpha, double beta) {
  const char* op = "local_response_norm_backward";
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    const T* xp = input<T>(x, op, "x");
    require_same_shape(dy, x, op, "x");
    const T* yp = input<T>(y, op, "y");
    require_same_shape(dy, y, op, "y");
    const T* sp = input<T>(scale, op, "scale");
    require_same_shape(dy, scale, op, "scale");
    T* dxp = output<T>(dx, op, "out");
    require_same_shape(dy, dx, op, "out");
    check_options(op, depth_radius, 1.0, alpha, beta);
    const auto plan = LrnPlan<T>(dy, depth_radius, op);
    py::gil_scoped_release release;
    cpu::lrn_backward<T>(dyp, xp, yp, sp, dxp, plan.pixels, plan.channels, depth_radius, T(alpha),
                         T(beta), plan.workspace(), plan.size, plan.team);
  });
}

void bind_lrn(py::module_& m) {
  m.def("local_response_norm", &lrn, py::arg("x"), py::arg("y"), py::arg("scale"), py::arg("depth_radius"),
        py::arg("bias"), py::arg("alpha"), py::arg("beta"),
        "LRN over the last axis into y and scale (TensorFlow semantics).");
  m.def("local_response_norm_backward", &lrn_backward, py::arg("dy"), py::arg("x"), py::arg("y"),
        py::arg("scale"), py::arg("out"), py::arg("depth_radius"), py::arg("alpha"), py::arg("beta"));
}

}  // namespace fastnn::python
