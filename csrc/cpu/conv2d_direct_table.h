// The per-ISA direct-convolution row kernels (conv2d_direct_kernels.h, compiled
// by conv2d_direct_<isa>.cpp) as one table; conv2d_direct.cpp resolves it once
// (cpu/dispatch.h).  Each kernel handles rows [row_begin, row_end) of
// batch x out_h with one chunk's padded-input buffer.
#pragma once

#include <cstdint>

#include "cpu/activations.h"
#include "cpu/conv2d_direct.h"

namespace fastnn::cpu {

template <typename T>
struct DirectConvKernels {
  // y holds the output rows from y_row0 on.
  void (*forward_rows)(const DirectConvPlan& plan, const T* x_nhwc, const T* w_packed, const T* bias_packed,
                       Activation act, T* y_nhwc, int64_t y_row0, int64_t row_begin, int64_t row_end,
                       T* pad_buffer);
  // dw_hwio += this chunk's weight gradient.
  void (*backward_weights_rows)(const DirectConvPlan& plan, const T* dy_nhwc, const T* x_nhwc, int64_t row_begin,
                                int64_t row_end, T* pad_buffer, T* dw_hwio);
};

namespace portable { template <typename T> DirectConvKernels<T> direct_conv_kernel_table(); }
namespace avx2 { template <typename T> DirectConvKernels<T> direct_conv_kernel_table(); }
namespace avx512 { template <typename T> DirectConvKernels<T> direct_conv_kernel_table(); }

}  // namespace fastnn::cpu
