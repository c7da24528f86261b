// Bindings for local response normalisation over the last (channel) axis.
// Python allocates y, scale and dx; the binding checks dtypes, contiguity and
// sizes, allocates the kernels' small workspace (one padded channel row per
// thread) and releases the GIL around the compute.
#include <initializer_list>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "cpu/lrn.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

static void check_io(const py::array& ref, const py::array& a, bool output, const char* op, const char* ref_name,
                     const char* name) {
  require_same(ref, a, op, ref_name, name);
  require_contiguous(a, op, name);
  if (output) require_writeable(a, op, name);
}

static void check_options(const char* op, int64_t depth_radius, double bias, double alpha, double beta) {
  if (depth_radius < 0 || !(bias > 0) || !(alpha >= 0) || !(beta >= 0)) {
    throw py::value_error(std::string(op) + ": need depth_radius >= 0, bias > 0, alpha >= 0, beta >= 0");
  }
}

static int64_t channel_count(const py::array& x, const char* op) {
  if (x.ndim() < 1) throw py::value_error(std::string(op) + ": x must have a channel (last) axis");
  return x.shape(x.ndim() - 1);
}

static void lrn(const py::array& x, py::array& y, py::array& scale, int64_t depth_radius, double bias,
                double alpha, double beta) {
  const char* op = "local_response_norm";
  const DType dt = dtype_of(x, op, "x");
  require_contiguous(x, op, "x");
  check_io(x, y, true, op, "x", "y");
  check_io(x, scale, true, op, "x", "scale");
  check_options(op, depth_radius, bias, alpha, beta);
  const int64_t channels = channel_count(x, op);
  const int64_t pixels = channels == 0 ? 0 : x.size() / channels;
  const int team = get_num_threads();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> workspace(static_cast<size_t>(cpu::lrn_workspace_size<T>(pixels, channels, depth_radius, team)));
    const T* xp = in_ptr<T>(x);
    T* yp = out_ptr<T>(y);
    T* sp = out_ptr<T>(scale);
    py::gil_scoped_release release;
    cpu::lrn_forward<T>(xp, yp, sp, pixels, channels, depth_radius, T(bias), T(alpha), T(beta),
                        workspace.data(), static_cast<int64_t>(workspace.size()), team);
  });
}

static void lrn_backward(const py::array& dy, const py::array& x, const py::array& y, const py::array& scale,
                         py::array& dx, int64_t depth_radius, double alpha, double beta) {
  const char* op = "local_response_norm_backward";
  const DType dt = dtype_of(dy, op, "dy");
  require_contiguous(dy, op, "dy");
  check_io(dy, x, false, op, "dy", "x");
  check_io(dy, y, false, op, "dy", "y");
  check_io(dy, scale, false, op, "dy", "scale");
  check_io(dy, dx, true, op, "dy", "out");
  check_options(op, depth_radius, 1.0, alpha, beta);
  const int64_t channels = channel_count(dy, op);
  for (const py::array* a : std::initializer_list<const py::array*>{&x, &y, &scale, &dx}) {
    if (channel_count(*a, op) != channels) {
      throw py::value_error(std::string(op) + ": all arrays must have the same channel (last) axis");
    }
  }
  const int64_t pixels = channels == 0 ? 0 : dy.size() / channels;
  const int team = get_num_threads();
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> workspace(static_cast<size_t>(cpu::lrn_workspace_size<T>(pixels, channels, depth_radius, team)));
    const T* dyp = in_ptr<T>(dy);
    const T* xp = in_ptr<T>(x);
    const T* yp = in_ptr<T>(y);
    const T* sp = in_ptr<T>(scale);
    T* dxp = out_ptr<T>(dx);
    py::gil_scoped_release release;
    cpu::lrn_backward<T>(dyp, xp, yp, sp, dxp, pixels, channels, depth_radius, T(alpha), T(beta),
                         workspace.data(), static_cast<int64_t>(workspace.size()), team);
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
