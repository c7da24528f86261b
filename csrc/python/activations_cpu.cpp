// Bindings for relu/sigmoid/tanh forward and backward.  Outputs are
// allocated by the Python caller and passed in, so the kernels allocate
// nothing; the GIL is released while they run.
#include "cpu/activations.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

using cpu::Activation;

static void forward(Activation act, const char* op, const py::array& x, py::array& y) {
  dispatch_float(dtype_of(x, op, "x"), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = input<T>(x, op, "x");
    T* yp = output<T>(y, op, "out");
    require_same_shape(x, y, op, "out");
    const int64_t n = x.size();
    py::gil_scoped_release release;
    cpu::activation_forward<T>(act, xp, yp, n);
  });
}

static void backward(Activation act, const char* op, const py::array& dy, const py::array& y, py::array& dx) {
  dispatch_float(dtype_of(dy, op, "dy"), [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = input<T>(dy, op, "dy");
    const T* yp = input<T>(y, op, "y");
    require_same_shape(dy, y, op, "y");
    T* dxp = output<T>(dx, op, "out");
    require_same_shape(dy, dx, op, "out");
    const int64_t n = dy.size();
    py::gil_scoped_release release;
    cpu::activation_backward<T>(act, dyp, yp, dxp, n);
  });
}

void bind_activations(py::module_& m) {
  struct Entry { const char* name; const char* backward_name; Activation act; };
  for (const Entry e : {Entry{"relu", "relu_backward", Activation::relu},
                        Entry{"sigmoid", "sigmoid_backward", Activation::sigmoid},
                        Entry{"tanh", "tanh_backward", Activation::tanh}}) {
    m.def(e.name, [e](const py::array& x, py::array& out) { forward(e.act, e.name, x, out); },
          py::arg("x"), py::arg("out"));
    m.def(e.backward_name,
          [e](const py::array& dy, const py::array& y, py::array& out) {
            backward(e.act, e.backward_name, dy, y, out);
          },
          py::arg("dy"), py::arg("y"), py::arg("out"));
  }
}

}  // namespace fastnn::python
