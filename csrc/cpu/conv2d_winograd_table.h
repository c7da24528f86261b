// The Winograd F(2x2, 3x3) transforms (conv2d_winograd_kernels.h), compiled per ISA.
#pragma once

#include <cstdint>

#include "cpu/activations.h"
#include "cpu/conv2d.h"

namespace fastnn::cpu {

// Tiles are numbered over batch x tiles_h x tiles_w (2x2 output pixels each).
template <typename T>
struct WinogradKernels {
  // v[p * v_stride + (t - tile_begin) * in_c + c] = (B^T d B)[p] of tile t's 4x4
  // input window d (zeros outside x), p = 4 * row + column.
  void (*input_tiles)(const Conv2dShape& s, const T* x_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
                      int64_t tile_end, T* v, int64_t v_stride);
  // y's pixels of tiles [tile_begin, tile_end) = A^T m A + bias (relu applied when
  // asked; other activations are the caller's), m laid out as v with out_c columns.
  void (*output_tiles)(const Conv2dShape& s, const T* m, int64_t m_stride, const T* bias, bool relu,
                       int64_t tiles_h, int64_t tiles_w, int64_t tile_begin, int64_t tile_end, T* y_nhwc);
};

namespace portable { template <typename T> WinogradKernels<T> winograd_kernel_table(); }
namespace avx2 { template <typename T> WinogradKernels<T> winograd_kernel_table(); }
namespace avx512 { template <typename T> WinogradKernels<T> winograd_kernel_table(); }

}  // namespace fastnn::cpu
