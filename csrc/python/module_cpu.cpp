// fastnn._C: the CPU kernels.  Each op family binds itself in its own
// *_cpu.cpp file; this file holds the module and the runtime settings.
#include <pybind11/pybind11.h>

#include "common/cpu_features.h"
#include "common/float_mode.h"
#include "common/parallel.h"
#include "python/bindings.h"
#include "python/workspace.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastnn CPU kernels (C++, OpenMP)";
  // Resolve the ISA (and reject a bad FASTNN_ISA) at import, so kernels, which call
  // selected_isa() inside parallel regions, never see it throw.
  fastnn::selected_isa();
  m.def("get_num_threads", &fastnn::get_num_threads, "Threads the CPU kernels use.");
  m.def("set_num_threads", [](int n) {
    // Capped: workspaces are sized per thread, and no machine has more.
    constexpr int kMaxThreads = 4096;
    if (n < 1 || n > kMaxThreads) {
      throw py::value_error("set_num_threads: n must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                            std::to_string(n));
    }
    fastnn::set_num_threads(n);
  }, py::arg("n"));
  m.def("workspace_bytes", &fastnn::python::workspace_bytes_held,
        "Bytes the kernels' cached workspaces hold, over all threads.");
  m.def("release_memory", [] { fastnn::python::release_all_workspaces(); },
        "Frees every cached kernel workspace (one in use by a running call when that call ends).");
  m.def("openmp_enabled", &fastnn::openmp_enabled);
  m.def("get_flush_denormals", &fastnn::flush_denormals,
        "Whether the kernels run with subnormals flushed to zero (MXCSR FTZ|DAZ).");
  m.def("set_flush_denormals", &fastnn::set_flush_denormals, py::arg("on"));
  m.def("detected_isa", [] { return fastnn::isa_name(fastnn::detected_isa()); });
  m.def("selected_isa", [] { return fastnn::isa_name(fastnn::selected_isa()); },
        "The kernel ISA in use: detected_isa() lowered by FASTNN_ISA.");
  fastnn::python::bind_activations(m);
  fastnn::python::bind_gemm(m);
  fastnn::python::bind_machine(m);
  fastnn::python::bind_pool(m);
  fastnn::python::bind_lrn(m);
  fastnn::python::bind_elementwise(m);
  fastnn::python::bind_conv(m);
  fastnn::python::bind_seq(m);
}
