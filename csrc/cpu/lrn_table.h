// The per-ISA LRN kernels (lrn_kernels.h, compiled by lrn_<isa>.cpp) as one
// table; lrn.cpp resolves it once (cpu/dispatch.h).  Each kernel handles
// pixels [begin, end) with one task's padded channel rows.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

template <typename T>
struct LrnKernels {
  void (*forward_pixels)(const T* x, T* y, T* scale, int64_t begin, int64_t end, int64_t channels,
                         int64_t radius, T bias, T alpha, T beta, T* padded);
  void (*backward_pixels)(const T* dy, const T* x, const T* y, const T* scale, T* dx, int64_t begin,
                          int64_t end, int64_t channels, int64_t radius, T two_alpha_beta, T beta, T* padded);
};

namespace portable { template <typename T> LrnKernels<T> lrn_kernel_table(); }
namespace avx2 { template <typename T> LrnKernels<T> lrn_kernel_table(); }
namespace avx512 { template <typename T> LrnKernels<T> lrn_kernel_table(); }

}  // namespace fastnn::cpu
