// Bindings for max/avg pooling on NHWC arrays.  Python allocates every output
// and passes it in; these functions check what memory safety needs
// (array_utils.h: dtypes, contiguity, alignment, writeable outputs, shapes
// recomputed from the window arithmetic, an image with rows and columns and
// pad < kernel so each window holds a real pixel), then release the GIL
// around the kernel.
#include <string>
#include <vector>

#include "cpu/pool.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

using Window = std::pair<int64_t, int64_t>;

namespace {

// The pooling shape for an NHWC input of x's shape: options checked (pad <
// kernel, so every window of a non-empty image holds a real pixel), an image
// with rows and columns, and the output size recomputed from them.
cpu::Pool2dShape pool_shape(const py::array& x, Window kernel, Window stride, Window padding, const char* op,
                            const char* name) {
  require_ndim(x, 4, op, name);
  require_pool_options(kernel, stride, padding, op);
  if (x.shape(1) < 1 || x.shape(2) < 1) {
    fail_value(op, name, "must have at least one row and one column, got shape " + shape_text(x));
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
  s.out_height = window_output_size(s.height, s.kernel_h, s.stride_h, s.pad_h, s.pad_h, 1, op, "row");
  s.out_width = window_output_size(s.width, s.kernel_w, s.stride_w, s.pad_w, s.pad_w, 1, op, "column");
  return s;
}

std::vector<int64_t> output_shape(const cpu::Pool2dShape& s) { return {s.batch, s.out_height, s.out_width, s.channels}; }

// A forward's arrays, checked: x read, the pooling shape its windows give, y (`y_name`)
// written with the output shape.
template <typename T>
struct Forward {
  const T* x;
  T* y;
  cpu::Pool2dShape s;
};

template <typename T>
Forward<T> forward_arrays(const py::array& x, py::array& y, const char* y_name, Window kernel, Window stride,
                          Window padding, const char* op) {
  const T* xp = input<T>(x, op, "x");
  const cpu::Pool2dShape s = pool_shape(x, kernel, stride, padding, op, "x");
  T* yp = output<T>(y, op, y_name);
  require_shape(y, output_shape(s), op, y_name);
  return {xp, yp, s};
}

void max_pool2d(const py::array& x, py::array& y, py::array& argmax, Window kernel, Window stride, Window padding,
                bool argmax_nchw) {
  const char* op = "max_pool2d";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const Forward<T> f = forward_arrays<T>(x, y, "y", kernel, stride, padding, op);
    int64_t* ap = output<int64_t>(argmax, op, "argmax");
    require_shape(argmax, output_shape(f.s), op, "argmax");
    py::gil_scoped_release release;
    cpu::max_pool2d_forward<T>(f.s, f.x, f.y, ap, argmax_nchw);
  });
}

void max_pool2d_backward(const py::array& dy, const py::array& argmax, py::array& dx) {
  const char* op = "max_pool2d_backward";
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    const int64_t* ap = input<int64_t>(argmax, op, "argmax");
    require_same_shape(dy, argmax, op, "argmax");
    T* dxp = output<T>(dx, op, "out");
    if (dy.ndim() < 1 || dx.ndim() != dy.ndim() || dy.shape(0) != dx.shape(0)) {
      throw py::value_error(std::string(op) + ": dy " + shape_text(dy) + " and out " + shape_text(dx) +
                            " must have the same rank and batch (first) axis");
    }
    const int64_t batch = dy.shape(0);
    if (batch == 0) return;
    const int64_t dy_per_batch = dy.size() / batch, dx_per_batch = dx.size() / batch;
    // Every index is range-checked by the kernel: std::invalid_argument, a ValueError.
    py::gil_scoped_release release;
    cpu::max_pool2d_backward<T>(dyp, ap, dxp, batch, dy_per_batch, dx_per_batch);
  });
}

void avg_pool2d(const py::array& x, py::array& y, Window kernel, Window stride, Window padding,
                bool count_include_pad) {
  const char* op = "avg_pool2d";
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const Forward<T> f = forward_arrays<T>(x, y, "out", kernel, stride, padding, op);
    py::gil_scoped_release release;
    cpu::avg_pool2d_forward<T>(f.s, f.x, f.y, count_include_pad);
  });
}

void avg_pool2d_backward(const py::array& dy, py::array& dx, Window kernel, Window stride, Window padding,
                         bool count_include_pad) {
  const char* op = "avg_pool2d_backward";
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    T* dxp = output<T>(dx, op, "out");
    const cpu::Pool2dShape s = pool_shape(dx, kernel, stride, padding, op, "out");
    require_shape(dy, output_shape(s), op, "dy");
    py::gil_scoped_release release;
    cpu::avg_pool2d_backward<T>(s, dyp, dxp, count_include_pad);
  });
}

}  // namespace

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
