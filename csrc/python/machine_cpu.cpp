// Bindings for what fastnn knows of the machine: its caches and the GEMM blocking they give
// (`fastnn info`), and the probes `fastnn bench` uses.
#include "common/parallel.h"
#include "cpu/gemm/gemm.h"
#include "cpu/machine.h"
#include "python/array_utils.h"
#include "python/bindings.h"

namespace fastnn::python {

void bind_machine(py::module_& m) {
  m.def("cache_sizes", [] {
    const cpu::CacheSizes& c = cpu::cache_sizes();
    py::dict d;
    d["l1d"] = c.l1d;
    d["l2"] = c.l2;
    d["l3"] = c.l3;
    d["source"] = c.source;
    return d;
  }, "The data caches the kernels are blocked for: bytes of L1d and L2 (per core), L3, and where each came from.");
  m.def("gemm_blocking", [](int64_t m_, int64_t n, int64_t k, const std::string& dtype, int threads) {
    const char* op = "gemm_blocking";
    require_range(m_, 1, int64_t(1) << 31, op, "m");
    require_range(n, 1, int64_t(1) << 31, op, "n");
    require_range(k, 1, int64_t(1) << 31, op, "k");
    require_range(threads, 0, 1 << 16, op, "threads");
    if (dtype != "float32" && dtype != "float64") {
      throw py::value_error("gemm_blocking: dtype must be 'float32' or 'float64', got '" + dtype + "'");
    }
    const int team = threads > 0 ? threads : get_num_threads();
    const cpu::GemmBlocking b = dtype == "float32" ? cpu::gemm_blocking<float>(m_, n, k, team)
                                                   : cpu::gemm_blocking<double>(m_, n, k, team);
    py::dict d;
    d["kernel"] = b.kernel;
    d["mr"] = b.mr;
    d["nr"] = b.nr;
    d["kc"] = b.kc;
    d["mc"] = b.mc;
    d["mc_inplace"] = b.mc_inplace;
    d["nc"] = b.nc;
    d["threads"] = b.threads;
    return d;
  }, py::arg("m"), py::arg("n"), py::arg("k"), py::arg("dtype") = "float32", py::arg("threads") = 0,
     "The blocks gemm would use for an m x n x k product: micro-tile mr x nr, K block kc, A block "
     "rows mc (mc_inplace when A is read in place), B block columns nc, threads (0: the current count).");
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
