// Bindings for the machine probes used by `fastnn bench`.
#include "cpu/machine.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

void bind_machine(py::module_& m) {
  m.def("measure_peak_flops", [](double seconds) {
    py::gil_scoped_release release;
    return cpu::measure_peak_flops(seconds);
  }, py::arg("seconds") = 0.3, "Float32 FLOP/s of all threads' FMA units (0 without AVX2).");
  m.def("measure_triad_bandwidth", [](py::array_t<float, py::array::c_style> a,
                                      py::array_t<float, py::array::c_style> b,
                                      py::array_t<float, py::array::c_style> c, int repeats) {
    if (a.size() != b.size() || a.size() != c.size()) throw py::value_error("triad: sizes differ");
    float* ap = a.mutable_data();
    const float* bp = b.data();
    const float* cp = c.data();
    const int64_t n = a.size();
    py::gil_scoped_release release;
    return cpu::measure_triad_bandwidth(ap, bp, cp, n, repeats);
  }, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("repeats") = 5,
     "Bytes/s of a = b + 0.5*c over all threads (best of `repeats`).");
}

}  // namespace fastnn::python
