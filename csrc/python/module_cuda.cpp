// fastnn._cuda: the CUDA kernels (csrc/cuda/).  Each op family binds itself in its own
// *_cuda.cpp file, through the device-array checks and the launch of device_array.h;
// this file holds the module and the activation codes.  Importing it touches no device;
// only calls do.
#include <pybind11/pybind11.h>

#include "cuda/kernels.h"
#include "python/bindings_cuda.h"

namespace fc = fastnn::cuda;
namespace fd = fastnn::python::device;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastnn's CUDA kernels (device arrays via __cuda_array_interface__).";
  m.attr("RELU") = int{fc::kRelu};
  m.attr("SIGMOID") = int{fc::kSigmoid};
  m.attr("TANH") = int{fc::kTanh};
  fd::bind_activations(m);
  fd::bind_gemm(m);
  fd::bind_elementwise(m);
  fd::bind_conv(m);
  fd::bind_pool(m);
  fd::bind_lrn(m);
}
