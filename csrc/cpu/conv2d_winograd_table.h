// The Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms (conv2d_winograd_kernels.h), compiled per ISA.
#pragma once

#include <cstdint>

#include "cpu/activations.h"
#include "cpu/conv2d.h"

namespace fastnn::cpu {

// Tiles are numbered over batch x tiles_h x tiles_w (2x2 output pixels each; 4x4 for
// F(4x4, 3x3)).
template <typename T>
struct WinogradKernels {
  // v[p * v_stride + (t - tile_begin) * in_c + c] = (B^T d B)[p] of tile t's 4x4
  // input window d (zeros outside x), p = 4 * row + column.
  void (*input_tiles)(const Conv2dShape& s, const T* x_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
                      int64_t tile_end, T* v, int64_t v_stride);
  // Channels [o_begin, o_end) of y's pixels of tiles [tile_begin, tile_end) = A^T m A +
  // bias (relu applied when asked; other activations are the caller's), m laid out as v
  // with out_c columns.
  void (*output_tiles)(const Conv2dShape& s, const T* m, int64_t m_stride, const T* bias, bool relu,
                       int64_t tiles_h, int64_t tiles_w, int64_t tile_begin, int64_t tile_end, int64_t o_begin,
                       int64_t o_end, T* y_nhwc);
  // Backward-weights (F(3x3, 2x2)): w[p * w_stride + (t - tile_begin) * out_c + o] =
  // (G' e G'^T)[p] of tile t's 2x2 block e of dy (zeros outside), G' = [1 0; 1/2 1/2;
  // 1/2 -1/2; 0 -1] (the sign of the last row folds the input transform's difference).
  void (*dy_tiles)(const Conv2dShape& s, const T* dy_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
                   int64_t tile_end, T* w, int64_t w_stride);
  // u[p * u_stride + k] = (G g G^T)[p] of the 3x3 kernel g[tap] = w[tap * w_stride + k],
  // for pairs [k_begin, k_end): of a forward's HWIO weights, k = c * out_c + o and both
  // strides in_c * out_c (backward-data passes its own).  Once per call (the
  // threads taking ranges of pairs): the baseline-compiled scalar loop it replaces took
  // 95 us for 32 x 64 channels, 70% of a batch-1 forward at 14x14.
  void (*weight_tiles)(int64_t w_stride, int64_t u_stride, int64_t k_begin, int64_t k_end, const T* w_hwio, T* u);
  // Backward-weights' last step: dw (HWIO) = A'^T S A' of sums[p * co + k], the 16
  // positions' GEMM results, A'^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1], for pairs [k_begin, k_end).
  void (*weight_gradient_tiles)(int64_t co, int64_t k_begin, int64_t k_end, const T* sums, T* dw_hwio);
  // The same three forward passes for F(4x4, 3x3): tiles of 4x4 output pixels, 6x6
  // input windows, 36 positions p = 6 * row + column.
  void (*input_tiles4)(const Conv2dShape& s, const T* x_nhwc, int64_t tiles_h, int64_t tiles_w,
                       int64_t tile_begin, int64_t tile_end, T* v, int64_t v_stride);
  void (*output_tiles4)(const Conv2dShape& s, const T* m, int64_t m_stride, const T* bias, bool relu,
                        int64_t tiles_h, int64_t tiles_w, int64_t tile_begin, int64_t tile_end, int64_t o_begin,
                        int64_t o_end, T* y_nhwc);
  void (*weight_tiles4)(int64_t w_stride, int64_t u_stride, int64_t k_begin, int64_t k_end, const T* w_hwio,
                        T* u);
  // ... and backward-weights' two for F(3x3, 4x4): w = A e A^T of the 4x4 blocks of dy
  // (A = the transpose of the forward's A^T), dw = G^T S G of the 36 sums.
  void (*dy_tiles4)(const Conv2dShape& s, const T* dy_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
                    int64_t tile_end, T* w, int64_t w_stride);
  void (*weight_gradient_tiles4)(int64_t co, int64_t k_begin, int64_t k_end, const T* sums, T* dw_hwio);
  // Backward-data's U for F(4x4, 3x3), from the forward's weights w_hwio (3 x 3 x c_f x
  // o_f) turned half-way and transposed: u[p * co + o * c_f + c] = (G g G^T)[p] of g[tap]
  // = w_hwio[(8 - tap) * co + c * o_f + o], co = c_f * o_f, for the forward's output
  // channels o in [o_begin, o_end).  (F(2x2, 3x3)'s backward-data reads the forward's U,
  // its positions permuted: conv2d_winograd.cpp, set_gemm_b.)
  void (*turned_weight_tiles4)(int64_t c_f, int64_t o_f, int64_t o_begin, int64_t o_end, const T* w_hwio, T* u);
};

namespace portable { template <typename T> WinogradKernels<T> winograd_kernel_table(); }
namespace avx2 { template <typename T> WinogradKernels<T> winograd_kernel_table(); }
namespace avx512 { template <typename T> WinogradKernels<T> winograd_kernel_table(); }

}  // namespace fastnn::cpu
