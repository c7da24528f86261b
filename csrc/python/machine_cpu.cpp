// Bindings for the machine probes used by `fastnn bench`.
#include "cpu/machine.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

void bind_machine(py::module_& m) {
  m.def("measure_peak_flops", [](double seconds) {
    if (!(seconds >= 0 && seconds <= 60)) {
      throw py::value_error("measure_peak_flops: seconds must be in [0, 60], got " + std::to_string(seconds));
    }
    py::gil_scoped_release release;
    return cpu::measure_peak_flops(seconds);
  }, py::arg("seconds") = 0.3, "Float32 FLOP/s of all threads' FMA units (0 without AVX2).");
  m.def("measure_triad_bandwidth", [](py::array& a, const py::array& b, const py::array& c, int repeats) {
    const char* op = "measure_triad_bandwidth";
    float* ap = output<float>(a, op, "a");
    const float* bp = input<float>(b, op, "b");
    require_same_shape(a, b, op, "b");
    const float* cp = input<float>(c, op, "c");
    require_same_shape(a, c, op, "c");
    require_range(repeats, 1, 1000, op, "repeats");
    const int64_t n = a.size();
    py::gil_scoped_release release;
    return cpu::measure_triad_bandwidth(ap, bp, cp, n, repeats);
  }, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("repeats") = 5,
     "Bytes/s of a = b + 0.5*c over all threads (best of `repeats`); float32 arrays of one shape.");
}

}  // namespace fastnn::python
