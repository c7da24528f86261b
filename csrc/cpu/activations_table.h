// The per-ISA activation kernels (activations_kernels.h, compiled by
// activations_<isa>.cpp) as one table; activations.cpp resolves it once
// (cpu/dispatch.h).  Each kernel handles one contiguous chunk.
#pragma once

#include <cstdint>

#include "cpu/activations.h"

namespace fastnn::cpu {

template <typename T>
struct ActivationKernels {
  void (*forward)(Activation act, const T* x, T* y, int64_t n);
  void (*backward)(Activation act, const T* dy, const T* y, T* dx, int64_t n);
};

namespace portable { template <typename T> ActivationKernels<T> activation_kernel_table(); }
namespace avx2 { template <typename T> ActivationKernels<T> activation_kernel_table(); }
namespace avx512 { template <typename T> ActivationKernels<T> activation_kernel_table(); }

}  // namespace fastnn::cpu
