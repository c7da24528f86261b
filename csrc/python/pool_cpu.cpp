// Bindings for max/avg pooling on NHWC arrays.  Python allocates every output
// and passes it in; these functions check what memory safety needs (dtypes,
// contiguity, shapes that match the window arithmetic, pad < kernel so each
// window holds a real pixel), then release the GIL around the kernel.
#include <string>
#include <vector>

#include "cpu/pool.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

using Window = std::pair<int64_t, int64_t>;

static void require_shape(const py::array& a, const std::vector<int64_t>& shape, const char* op,
                          const char* name) {
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(static_cast<py::ssize_t>(i)) == shape[i];
  if (!same) throw py::value_error(std::string(op) + ": " + name + " has the wrong shape");
}

static void require_int64(const py::array& a, const char* op, const char* name) {
  if (!a.dtype().is(py::dtype::of<int64_t>())) {
    throw py::type_error(std::string(op) + ": " + name + " must be int64");
  }
}

// The pooling shape for an NHWC input of `x_shape`, or ValueError.
static cpu::Pool2dShape pool_shape(const py::array& x, Window kernel, Window stride, Window padding,
                                   const char* op, const char* name) {
  if (x.ndim() != 4) throw py::value_error(std::string(op) + ": " + name + " must be 4-D NHWC");
  if (kernel.first < 1 || kernel.second < 1 || stride.first < 1 || stride.second < 1 ||
      padding.first < 0 || padding.second < 0 || padding.first >= kernel.first ||
      padding.second >= kernel.second) {
    throw py::value_error(std::string(op) + ": need kernel >= 1, stride >= 1, 0 <= padding < kernel");
  }
  cpu::Pool2dShape s{};
  s.batch = x.shape(0);
  s.height = x.shape(1);
  s.width = x.shape(2);
  s.channels = x.shape(3);
  s.kernel_h = kernel.first;
  s.kernel_w = kernel.second;
  s.stride_h = stride.first;
  s.stride_w = stride.second;
  s.pad_h = padding.first;
  s.pad_w = padding.second;
  const int64_t span_h = s.height + 2 * s.pad_h - s.kernel_h, span_w = s.width + 2 * s.pad_w - s.kernel_w;
  if (span_h < 0 || span_w < 0) throw py::value_error(std::string(op) + ": kernel does not fit the input");
  s.out_height = span_h / s.stride_h + 1;
  s.out_width = span_w / s.stride_w + 1;
  return s;
}

static void check_float_io(const py::array& in, const py::array& out, const char* op, const char* in_name,
                           const char* out_name) {
  dtype_of(in, op, in_name);
  if (!in.dtype().is(out.dtype())) {
    throw py::type_error(std::string(op) + ": " + in_name + " and " + out_name + " must have the same dtype");
  }
  require_contiguous(in, op, in_name);
  require_contiguous(out, op, out_name);
  require_writeable(out, op, out_name);
}

static void max_pool2d(const py::array& x, py::array& y, py::array& argmax, Window kernel, Window stride,
                       Window padding, bool argmax_nchw) {
  const char* op = "max_pool2d";
  check_float_io(x, y, op, "x", "y");
  const cpu::Pool2dShape s = pool_shape(x, kernel, stride, padding, op, "x");
  const std::vector<int64_t> y_shape{s.batch, s.out_height, s.out_width, s.channels};
  require_shape(y, y_shape, op, "y");
  require_int64(argmax, op, "argmax");
  require_shape(argmax, y_shape, op, "argmax");
  require_contiguous(argmax, op, "argmax");
  require_writeable(argmax, op, "argmax");
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x);
    T* yp = out_ptr<T>(y);
    int64_t* ap = static_cast<int64_t*>(argmax.mutable_data());
    py::gil_scoped_release release;
    cpu::max_pool2d_forward<T>(s, xp, yp, ap, argmax_nchw);
  });
}

static void max_pool2d_backward(const py::array& dy, const py::array& argmax, py::array& dx) {
  const char* op = "max_pool2d_backward";
  check_float_io(dy, dx, op, "dy", "out");
  require_int64(argmax, op, "argmax");
  require_contiguous(argmax, op, "argmax");
  if (argmax.size() != dy.size()) throw py::value_error(std::string(op) + ": argmax and dy must have the same size");
  if (dy.ndim() < 1 || dx.ndim() < 1 || dy.shape(0) != dx.shape(0)) {
    throw py::value_error(std::string(op) + ": dy and out must have the same batch (first) axis");
  }
  const int64_t batch = dy.shape(0);
  if (batch == 0) return;
  const int64_t dy_per_batch = dy.size() / batch, dx_per_batch = dx.size() / batch;
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = in_ptr<T>(dy);
    const int64_t* ap = static_cast<const int64_t*>(argmax.data());
    T* dxp = out_ptr<T>(dx);
    py::gil_scoped_release release;
    cpu::max_pool2d_backward<T>(dyp, ap, dxp, batch, dy_per_batch, dx_per_batch);
  });
}

static void avg_pool2d(const py::array& x, py::array& y, Window kernel, Window stride, Window padding,
                       bool count_include_pad) {
  const char* op = "avg_pool2d";
  check_float_io(x, y, op, "x", "out");
  const cpu::Pool2dShape s = pool_shape(x, kernel, stride, padding, op, "x");
  require_shape(y, {s.batch, s.out_height, s.out_width, s.channels}, op, "out");
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x);
    T* yp = out_ptr<T>(y);
    py::gil_scoped_release release;
    cpu::avg_pool2d_forward<T>(s, xp, yp, count_include_pad);
  });
}

static void avg_pool2d_backward(const py::array& dy, py::array& dx, Window kernel, Window stride,
                                Window padding, bool count_include_pad) {
  const char* op = "avg_pool2d_backward";
  check_float_io(dy, dx, op, "dy", "out");
  const cpu::Pool2dShape s = pool_shape(dx, kernel, stride, padding, op, "out");
  require_shape(dy, {s.batch, s.out_height, s.out_width, s.channels}, op, "dy");
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = in_ptr<T>(dy);
    T* dxp = out_ptr<T>(dx);
    py::gil_scoped_release release;
    cpu::avg_pool2d_backward<T>(s, dyp, dxp, count_include_pad);
  });
}

void bind_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("y"), py::arg("argmax"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("argmax_nchw"),
        "NHWC max pooling into y and argmax (flat indices into x, NCHW order if argmax_nchw).");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dy"), py::arg("argmax"), py::arg("out"),
        "out = 0, then out.flat[argmax] += dy.");
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("out"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("count_include_pad"));
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("out"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("count_include_pad"));
}

}  // namespace fastnn::python
