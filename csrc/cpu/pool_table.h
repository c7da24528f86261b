// The per-ISA pooling kernels (pool_kernels.h, compiled by pool_<isa>.cpp) as
// one table; pool.cpp resolves it once (cpu/dispatch.h).  Each kernel handles
// rows [row_begin, row_end) of batch x out_height (batch x height for the avg
// backward) on the calling thread.
#pragma once

#include <cstdint>

#include "cpu/pool.h"

namespace fastnn::cpu {

template <typename T>
struct PoolKernels {
  // Max-pool, the winning pixel tracked as int32 (float only, when an image's
  // pixel count fits; null for double) or as int64.
  void (*max_rows_int32)(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc, int64_t* argmax,
                         bool argmax_nchw, int64_t row_begin, int64_t row_end);
  void (*max_rows_int64)(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc, int64_t* argmax,
                         bool argmax_nchw, int64_t row_begin, int64_t row_end);
  // The unrolled 2x2 / stride-2 kernel (max_pool2d_is_2x2), index_base added to every argmax.
  void (*max_rows_2x2)(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc, int64_t* argmax,
                       bool argmax_nchw, int64_t index_base, int64_t row_begin, int64_t row_end);
  void (*avg_rows)(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc, bool count_include_pad,
                   int64_t row_begin, int64_t row_end);
  void (*avg_backward_rows)(const Pool2dShape& shape, const T* dy_nhwc, T* dx_nhwc, bool count_include_pad,
                            int64_t row_begin, int64_t row_end);
};

namespace portable { template <typename T> PoolKernels<T> pool_kernel_table(); }
namespace avx2 { template <typename T> PoolKernels<T> pool_kernel_table(); }
namespace avx512 { template <typename T> PoolKernels<T> pool_kernel_table(); }

}  // namespace fastnn::cpu
