// Direct-convolution row kernels, written once over GCC vector types and
// compiled per ISA (conv2d_direct_portable.cpp, _avx2.cpp, _avx512.cpp); the
// vector width and the register blocking follow the including unit's flags.
// conv2d_direct.cpp packs the weights, splits the rows across threads and
// picks the ISA.
//
// Every tile of output pixels (DirectConvPlan: whole rows of one image, for
// the small-channel layers this path serves, within a fixed cap) first copies
// the input it reads into a zero-padded buffer: then every tap of every pixel
// is in range and the inner loops have no border cases, for any stride,
// dilation or padding.
//
// Forward: a tile of P output pixels x one 128-byte block of output channels
// (NV vectors) stays in P*NV registers while the taps stream past: per tap,
// NV loads of packed weights, P broadcasts of x and P*NV FMAs.  Bias is the
// accumulators' start; the activation runs over the finished output row while
// it is in L1.
//
// Backward-weights: a block of KB taps x one channel block of dw (KB*NV
// registers) accumulates over every pixel of the chunk: per pixel, NV loads of
// dy, KB broadcasts of x and KB*NV FMAs; dy is read once per tap block.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/shapes.h"
#include "cpu/conv2d_direct.h"
#include "cpu/conv2d_direct_table.h"
#include "cpu/math_approx.h"
#include "cpu/vector_width.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including conv2d_direct_kernels.h"
#endif

#define FASTNN_DIRECT_INLINE inline __attribute__((always_inline))

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {
namespace {

// Register file: 32 zmm with AVX-512, 16 ymm/xmm otherwise.  P*NV (forward)
// and KB*NV (backward) accumulators leave room for the operands.
constexpr int kVecBytes = static_cast<int>(kVectorBytes);  // cpu/vector_width.h
// kPairPixels: pixels of a forward tile over two channel blocks at once (0: none).
#if defined(__AVX512F__)
constexpr int kForwardPixels = 8;   // 16 accumulators
constexpr int kPairPixels = 6;      // 24 accumulators
constexpr int kMaxTapBlock = 12;    // 24 accumulators
#elif defined(__AVX2__)
constexpr int kForwardPixels = 3;   // 12 accumulators
constexpr int kPairPixels = 0;
constexpr int kMaxTapBlock = 3;
#else
constexpr int kForwardPixels = 1;   // 8 accumulators
constexpr int kPairPixels = 0;
constexpr int kMaxTapBlock = 1;
#endif

template <typename T> struct VectorOf;
template <> struct VectorOf<float> { typedef float type __attribute__((vector_size(kVecBytes))); };
template <> struct VectorOf<double> { typedef double type __attribute__((vector_size(kVecBytes))); };
template <typename T> using Vec = typename VectorOf<T>::type;

template <typename T> constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
template <typename T> constexpr int kBlock = static_cast<int>(kDirectOcBlock<T>);
constexpr int kVectors = 128 / kVecBytes;  // NV: vectors per channel block

template <typename T>
FASTNN_DIRECT_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
FASTNN_DIRECT_INLINE void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}

// Copies padded rows [row0, row1) x padded columns [col0, col0 + padded_w) of
// image x_image (padded row r is input row r - pad_top, padded column q input
// column q - pad_left) into buf, padded_w columns each, zeros outside the image.
template <typename T>
void pad_rows(const Conv2dShape& s, const T* x_image, int64_t row0, int64_t row1, int64_t col0, int64_t padded_w,
              T* buf) {
  const int64_t c = s.in_c;
  const int64_t first = std::max<int64_t>(col0 - s.pad_left, 0);                 // first input column copied
  const int64_t end = std::min<int64_t>(col0 + padded_w - s.pad_left, s.in_w);   // and one past the last
  const int64_t left = std::clamp<int64_t>(s.pad_left - col0, 0, padded_w);
  const int64_t cols = std::max<int64_t>(end - first, 0);
  for (int64_t r = row0; r < row1; ++r) {
    T* dst = buf + (r - row0) * padded_w * c;
    const int64_t ih = r - s.pad_top;
    if (ih < 0 || ih >= s.in_h) {
      std::fill(dst, dst + padded_w * c, T(0));
      continue;
    }
    std::fill(dst, dst + left * c, T(0));
    if (cols > 0) {
      std::memcpy(dst + left * c, x_image + (ih * s.in_w + first) * c, sizeof(T) * static_cast<size_t>(cols * c));
    }
    std::fill(dst + (left + cols) * c, dst + padded_w * c, T(0));
  }
}

// pad_rows for a narrow plan: the same padded rows and columns, channel-planar
// (channel c's row r at buf + (c * padded_h + r) * pitch), zeros in columns
// [padded_w, pitch).
template <typename T>
void pad_rows_planar(const DirectConvPlan& plan, const T* x_image, int64_t row0, int64_t row1, int64_t col0,
                     T* buf) {
  const Conv2dShape& s = plan.shape;
  const int64_t c_count = s.in_c, pitch = plan.pitch;
  const int64_t first = std::max<int64_t>(col0 - s.pad_left, 0);
  const int64_t end = std::min<int64_t>(col0 + plan.padded_w - s.pad_left, s.in_w);
  const int64_t left = std::clamp<int64_t>(s.pad_left - col0, 0, plan.padded_w);
  const int64_t cols = std::max<int64_t>(end - first, 0);
  for (int64_t c = 0; c < c_count; ++c) {  // the rows of each plane the tile reads
    std::fill(buf + c * plan.padded_h * pitch, buf + (c * plan.padded_h + row1 - row0) * pitch, T(0));
  }
  for (int64_t r = row0; r < row1; ++r) {
    const int64_t ih = r - s.pad_top;
    if (ih < 0 || ih >= s.in_h || cols == 0) continue;
    const T* src = x_image + (ih * s.in_w + first) * c_count;
    T* dst = buf + (r - row0) * pitch + left;
    if (c_count == 1) {
      std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(cols));
      continue;
    }
    for (int64_t q = 0; q < cols; ++q) {
      for (int64_t c = 0; c < c_count; ++c) dst[c * plan.padded_h * pitch + q] = src[q * c_count + c];
    }
  }
}

template <typename T>
void activate_row(Activation act, T* __restrict y, int64_t n) {
  switch (act) {
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(y[i]);
      break;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = tanh_scalar(y[i]);
      break;
    default:  // none; relu is applied in registers
      break;
  }
}

// P output pixels (x_pixel + p * pixel_step) x one channel block: y[p * y_step
// + j] for j < valid (a partial last block goes through a stack tile).  Relu
// is applied in registers; sigmoid and tanh over the finished row.
template <typename T, int P, bool Relu>
FASTNN_DIRECT_INLINE void forward_tile(const T* __restrict x_pixel, int64_t pixel_step,
                                       const int64_t* __restrict tap_offsets, int64_t taps,
                                       const T* __restrict w_block, const T* __restrict bias_block,
                                       T* __restrict y, int64_t y_step, int64_t valid) {
  constexpr int L = kLanes<T>, NV = kVectors;
  Vec<T> acc[P][NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    const Vec<T> b = load(bias_block + v * L);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  for (int64_t t = 0; t < taps; ++t) {
    const T* xt = x_pixel + tap_offsets[t];
    const T* wt = w_block + t * kBlock<T>;
    Vec<T> wv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) wv[v] = load(wt + v * L);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      const T xv = xt[p * pixel_step];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[p][v] += xv * wv[v];
    }
  }
  if (Relu) {
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[p][v] = acc[p][v] < Vec<T>{} ? Vec<T>{} : acc[p][v];
    }
  }
  if (valid == kBlock<T>) {
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) store(y + p * y_step + v * L, acc[p][v]);
    }
    return;
  }
  alignas(64) T tile[kBlock<T>];
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) store(tile + v * L, acc[p][v]);
    std::memcpy(y + p * y_step, tile, sizeof(T) * static_cast<size_t>(valid));
  }
}

// P output pixels x two whole channel blocks (w_block and the block after it, taps x
// kBlock apart): per tap 2*NV weight loads and P broadcasts for 2*P*NV FMAs, against
// NV and P for P*NV in forward_tile, where the load ports, not the FMAs, set the pace.
template <typename T, int P, bool Relu>
FASTNN_DIRECT_INLINE void forward_pair_tile(const T* __restrict x_pixel, int64_t pixel_step,
                                            const int64_t* __restrict tap_offsets, int64_t taps,
                                            const T* __restrict w_block, const T* __restrict bias_block,
                                            T* __restrict y, int64_t y_step) {
  constexpr int L = kLanes<T>, NV = 2 * kVectors;
  Vec<T> acc[P][NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    const Vec<T> b = load(bias_block + v * L);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  const int64_t second = taps * kBlock<T> - kBlock<T>;  // from block 0's tap row to block 1's
  for (int64_t t = 0; t < taps; ++t) {
    const T* xt = x_pixel + tap_offsets[t];
    const T* wt = w_block + t * kBlock<T>;
    Vec<T> wv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) wv[v] = load(wt + v * L + (v < kVectors ? 0 : second));
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      const T xv = xt[p * pixel_step];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[p][v] += xv * wv[v];
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      if (Relu) acc[p][v] = acc[p][v] < Vec<T>{} ? Vec<T>{} : acc[p][v];
      store(y + p * y_step + v * L, acc[p][v]);
    }
  }
}

// dw[k * out_c + j] += sum over the chunk's pixels of x[pixel + tap_offsets[k]]
// * dy[pixel, j], for k < KB and j < valid.  Full: valid is the whole block,
// so dy is loaded in place; otherwise each dy row goes through a stack tile.
template <typename T, int KB, bool Full>
void backward_weights_taps(const Conv2dShape& s, int64_t padded_w, const T* __restrict x_rows, int64_t rows,
                           int64_t cols, const T* __restrict dy_rows, const int64_t* __restrict tap_offsets, int64_t valid,
                           T* __restrict dw) {
  constexpr int L = kLanes<T>, NV = kVectors;
  Vec<T> acc[KB][NV];
  int64_t offsets[KB];
#pragma GCC unroll 16
  for (int k = 0; k < KB; ++k) {
    offsets[k] = tap_offsets[k];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[k][v] = Vec<T>{};
  }
  const int64_t pixel_step = s.stride_w * s.in_c;
  const int64_t x_row_step = s.stride_h * padded_w * s.in_c;
  alignas(64) T tile[kBlock<T>] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const T* x_pixel = x_rows + r * x_row_step;
    const T* dy_pixel = dy_rows + r * s.out_w * s.out_c;
    const T* const dy_end = dy_pixel + cols * s.out_c;  // (a pointer bound: one register fewer)
    for (; dy_pixel != dy_end; x_pixel += pixel_step, dy_pixel += s.out_c) {
      const T* d = dy_pixel;
      if (!Full) {
        std::memcpy(tile, dy_pixel, sizeof(T) * static_cast<size_t>(valid));
        d = tile;
      }
      Vec<T> dv[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) dv[v] = load(d + v * L);
#pragma GCC unroll 16
      for (int k = 0; k < KB; ++k) {
        const T xv = x_pixel[offsets[k]];
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[k][v] += xv * dv[v];
      }
    }
  }
  for (int k = 0; k < KB; ++k) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) store(tile + v * L, acc[k][v]);
    T* dw_row = dw + k * s.out_c;
    for (int64_t j = 0; j < valid; ++j) dw_row[j] += tile[j];
  }
}

// Runs the kernel for a block of kb <= KB taps (kb known only at run time).
template <typename T, int KB>
void backward_weights_block(int kb, const Conv2dShape& s, int64_t padded_w, const T* x_rows, int64_t rows,
                            int64_t cols, const T* dy_rows, const int64_t* tap_offsets, int64_t valid, T* dw) {
  if constexpr (KB > 1) {
    if (kb < KB) {
      backward_weights_block<T, KB - 1>(kb, s, padded_w, x_rows, rows, cols, dy_rows, tap_offsets, valid, dw);
      return;
    }
  }
  if (valid == kBlock<T>) {
    backward_weights_taps<T, KB, true>(s, padded_w, x_rows, rows, cols, dy_rows, tap_offsets, valid, dw);
  } else {
    backward_weights_taps<T, KB, false>(s, padded_w, x_rows, rows, cols, dy_rows, tap_offsets, valid, dw);
  }
}

// Calls fn(n, oh0, oh1, ow0, ow1) for each tile (output rows [oh0, oh1) x
// columns [ow0, ow1) of image n, at most band_rows x tile_w) of output rows
// [row_begin, row_end), after copying the input the tile reads into pad_buffer.
template <typename T, typename F>
void for_each_padded_segment(const DirectConvPlan& plan, const T* x, int64_t row_begin, int64_t row_end,
                             T* pad_buffer, const F& fn) {
  const Conv2dShape& s = plan.shape;
  for (int64_t row = row_begin; row < row_end;) {
    const int64_t n = row / s.out_h, oh0 = row % s.out_h;
    const int64_t oh1 = std::min({s.out_h, oh0 + (row_end - row), oh0 + plan.band_rows});
    const int64_t first = oh0 * s.stride_h;
    const int64_t last = cells_of(oh1, window_extent(s.kernel_h, s.dilation_h), s.stride_h);
    for (int64_t ow0 = 0; ow0 < s.out_w; ow0 += plan.tile_w) {
      const int64_t ow1 = std::min(s.out_w, ow0 + plan.tile_w);
      const T* x_image = x + n * s.in_h * s.in_w * s.in_c;
      if (plan.narrow) {
        pad_rows_planar(plan, x_image, first, last, ow0 * s.stride_w, pad_buffer);
      } else {
        pad_rows(s, x_image, first, last, ow0 * s.stride_w, plan.padded_w, pad_buffer);
      }
      fn(n, oh0, oh1, ow0, ow1);
    }
    row += oh1 - oh0;
  }
}

// ---- Narrow plans: output pixels in the lanes.
//
// Forward: G output channels x PV vectors of consecutive pixels of one row
// (G*PV accumulators) while the taps stream past: per tap, PV unaligned loads of
// planar input, G broadcasts of weights and G*PV FMAs; the finished tile goes
// out through a stack tile, transposed to NHWC.  Backward-weights: KB taps x G
// channels (KB*G accumulators, each a vector of per-lane partial sums) over
// every pixel vector of the band: per vector, KB loads of input, G of planar dy
// and KB*G FMAs; the per-lane sums are added to a buffer (one vector per tap
// and channel) and summed across lanes once per chunk.
#if defined(__AVX512F__)
constexpr int kNarrowAccumulators = 24;
#elif defined(__AVX2__)
constexpr int kNarrowAccumulators = 12;
#else
constexpr int kNarrowAccumulators = 8;
#endif
constexpr int kNarrowMaxChannels = 8;  // G

template <int G>
constexpr int narrow_forward_vectors() {  // PV
  return 2 * G <= kNarrowAccumulators ? 2 : 1;
}

template <typename T, int G, int PV, bool Relu>
FASTNN_DIRECT_INLINE void narrow_forward_tile(const T* __restrict x, const int64_t* __restrict tap_offsets,
                                              int64_t taps, const T* __restrict w, const T* __restrict bias,
                                              T* __restrict tile) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[G][PV];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 16
    for (int v = 0; v < PV; ++v) acc[g][v] = Vec<T>{} + bias[g];
  }
  for (int64_t t = 0; t < taps; ++t) {
    const T* xt = x + tap_offsets[t];
    const T* wt = w + t * kBlock<T>;
    Vec<T> xv[PV];
#pragma GCC unroll 16
    for (int v = 0; v < PV; ++v) xv[v] = load(xt + v * L);
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const T wg = wt[g];
#pragma GCC unroll 16
      for (int v = 0; v < PV; ++v) acc[g][v] += wg * xv[v];
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 16
    for (int v = 0; v < PV; ++v) {
      if (Relu) acc[g][v] = acc[g][v] < Vec<T>{} ? Vec<T>{} : acc[g][v];
      store(tile + g * PV * L + v * L, acc[g][v]);
    }
  }
}

// Columns [0, cols) of one output row, channels [oc0, oc0 + G): y_row is the
// row's first pixel, x_row its first window's planar input.
template <typename T, int G, bool Relu>
void narrow_forward_group(const DirectConvPlan& plan, const T* x_row, const T* w, const T* bias, T* y_row,
                          int64_t cols, int64_t oc0) {
  constexpr int L = kLanes<T>, PV = narrow_forward_vectors<G>();
  const int64_t out_c = plan.shape.out_c;
  alignas(64) T tile[G * PV * L];
  for (int64_t ow = 0; ow < cols; ow += PV * L) {
    const int64_t n = std::min<int64_t>(PV * L, cols - ow);
    if (PV > 1 && n <= L) {  // a last single vector
      narrow_forward_tile<T, G, 1, Relu>(x_row + ow, plan.tap_offsets, plan.taps, w + oc0, bias + oc0, tile);
      for (int64_t p = 0; p < n; ++p) {
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) y_row[(ow + p) * out_c + oc0 + g] = tile[g * L + p];
      }
      continue;
    }
    narrow_forward_tile<T, G, PV, Relu>(x_row + ow, plan.tap_offsets, plan.taps, w + oc0, bias + oc0, tile);
    for (int64_t p = 0; p < n; ++p) {
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) y_row[(ow + p) * out_c + oc0 + g] = tile[g * PV * L + p];
    }
  }
}

// Runs a group of g <= G channels (g known only at run time).
template <typename T, int G, bool Relu>
void narrow_forward_dispatch(int g, const DirectConvPlan& plan, const T* x_row, const T* w, const T* bias,
                             T* y_row, int64_t cols, int64_t oc0) {
  if constexpr (G > 1) {
    if (g < G) {
      narrow_forward_dispatch<T, G - 1, Relu>(g, plan, x_row, w, bias, y_row, cols, oc0);
      return;
    }
  }
  narrow_forward_group<T, G, Relu>(plan, x_row, w, bias, y_row, cols, oc0);
}

// Balanced channel groups of at most kNarrowMaxChannels: 12 runs as 6 + 6.
inline int64_t narrow_group(int64_t out_c, int64_t max_group) {
  const int64_t groups = (out_c + max_group - 1) / max_group;
  return (out_c + groups - 1) / groups;
}

template <typename T, bool Relu>
void narrow_forward_row(const DirectConvPlan& plan, const T* x_row, const T* w, const T* bias, T* y_row,
                        int64_t cols) {
  const int64_t out_c = plan.shape.out_c, group = narrow_group(out_c, kNarrowMaxChannels);
  for (int64_t oc0 = 0; oc0 < out_c; oc0 += group) {
    const int g = static_cast<int>(std::min(group, out_c - oc0));
    narrow_forward_dispatch<T, kNarrowMaxChannels, Relu>(g, plan, x_row, w, bias, y_row, cols, oc0);
  }
}

// The band's x * dy for taps t0 + k (k < KB) and channels oc0 + g (g < G), added
// per lane to dw_lanes (from tap t0 on).
template <typename T, int KB, int G>
void narrow_backward_weights_block(const DirectConvPlan& plan, const T* __restrict x_band,
                                   const T* __restrict dy_planar, int64_t rows, int64_t cols,
                                   const int64_t* __restrict tap_offsets, T* __restrict dw_lanes, int64_t oc0) {
  constexpr int L = kLanes<T>;
  const Conv2dShape& s = plan.shape;
  Vec<T> acc[KB][G];
  int64_t offsets[KB];
#pragma GCC unroll 16
  for (int k = 0; k < KB; ++k) {
    offsets[k] = tap_offsets[k];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) acc[k][g] = Vec<T>{};
  }
  const int64_t x_row_step = s.stride_h * plan.pitch, dy_plane = rows * plan.dy_pitch;
  for (int64_t r = 0; r < rows; ++r) {
    const T* x_row = x_band + r * x_row_step;
    const T* dy_row = dy_planar + oc0 * dy_plane + r * plan.dy_pitch;
    for (int64_t ow = 0; ow < cols; ow += L) {
      Vec<T> dv[G];
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) dv[g] = load(dy_row + g * dy_plane + ow);
#pragma GCC unroll 16
      for (int k = 0; k < KB; ++k) {
        const Vec<T> xv = load(x_row + offsets[k] + ow);
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) acc[k][g] += xv * dv[g];
      }
    }
  }
  // Per-lane partial sums: dw_lanes[(tap * out_c + oc) * L + lane].
  for (int k = 0; k < KB; ++k) {
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      T* p = dw_lanes + (k * s.out_c + oc0 + g) * L;
      store(p, load(p) + acc[k][g]);
    }
  }
}

template <typename T, int KB, int G>
void narrow_backward_weights_taps(int kb, const DirectConvPlan& plan, const T* x_band, const T* dy_planar,
                                  int64_t rows, int64_t cols, const int64_t* tap_offsets, T* dw_lanes,
                                  int64_t oc0) {
  if constexpr (KB > 1) {
    if (kb < KB) {
      narrow_backward_weights_taps<T, KB - 1, G>(kb, plan, x_band, dy_planar, rows, cols, tap_offsets, dw_lanes,
                                                 oc0);
      return;
    }
  }
  narrow_backward_weights_block<T, KB, G>(plan, x_band, dy_planar, rows, cols, tap_offsets, dw_lanes, oc0);
}

template <typename T, int G>
void narrow_backward_weights_group(int g, const DirectConvPlan& plan, const T* x_band, const T* dy_planar,
                                   int64_t rows, int64_t cols, T* dw_lanes, int64_t oc0) {
  if constexpr (G > 1) {
    if (g < G) {
      narrow_backward_weights_group<T, G - 1>(g, plan, x_band, dy_planar, rows, cols, dw_lanes, oc0);
      return;
    }
  }
  constexpr int KB = std::max(1, kNarrowAccumulators / G);
  // Balanced tap blocks, as the wide kernel's.
  const int64_t tap_blocks = (plan.taps + KB - 1) / KB;
  const int64_t tap_block = (plan.taps + tap_blocks - 1) / tap_blocks;
  for (int64_t t0 = 0; t0 < plan.taps; t0 += tap_block) {
    const int kb = static_cast<int>(std::min(tap_block, plan.taps - t0));
    narrow_backward_weights_taps<T, KB, G>(kb, plan, x_band, dy_planar, rows, cols, plan.tap_offsets + t0,
                                           dw_lanes + t0 * plan.shape.out_c * kLanes<T>, oc0);
  }
}

}  // namespace

// One output row, one channel block: tiles of P pixels, then of 4 and 1
// (a 1-pixel tile runs at FMA latency, not throughput).
template <typename T, bool Relu>
void forward_row_block(const DirectConvPlan& plan, const T* x_row, const T* w_block, const T* bias_block, T* y,
                       int64_t cols, int64_t valid) {
  const Conv2dShape& s = plan.shape;
  constexpr int P = kForwardPixels;
  const int64_t pixel_step = s.stride_w * s.in_c;
  int64_t ow = 0;
  for (; ow + P <= cols; ow += P) {
    forward_tile<T, P, Relu>(x_row + ow * pixel_step, pixel_step, plan.tap_offsets, plan.taps, w_block, bias_block,
                             y + ow * s.out_c, s.out_c, valid);
  }
  if constexpr (P > 4) {
    for (; ow + 4 <= cols; ow += 4) {
      forward_tile<T, 4, Relu>(x_row + ow * pixel_step, pixel_step, plan.tap_offsets, plan.taps, w_block,
                               bias_block, y + ow * s.out_c, s.out_c, valid);
    }
  }
  for (; ow < cols; ++ow) {
    forward_tile<T, 1, Relu>(x_row + ow * pixel_step, pixel_step, plan.tap_offsets, plan.taps, w_block, bias_block,
                             y + ow * s.out_c, s.out_c, valid);
  }
}

// Output rows [row_begin, row_end) of batch x out_h.  w_packed: oc_blocks
// blocks of taps x kDirectOcBlock weights; bias_packed: oc_blocks x
// kDirectOcBlock (zeros where there is no bias).
// y holds output rows from y_row0 on (0: the whole output; a fused caller
// passes a scratch of a few rows).
template <typename T>
void conv2d_direct_forward_rows(const DirectConvPlan& plan, const T* x_nhwc, const T* w_packed, const T* bias_packed,
                                Activation act, T* y_nhwc, int64_t y_row0, int64_t row_begin, int64_t row_end,
                                T* pad_buffer) {
  const Conv2dShape& s = plan.shape;
  for_each_padded_segment(plan, x_nhwc, row_begin, row_end, pad_buffer,
                          [&](int64_t n, int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1) {
    const int64_t cols = ow1 - ow0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      T* y_row = y_nhwc + ((n * s.out_h + oh - y_row0) * s.out_w + ow0) * s.out_c;
      if (plan.narrow) {
        const T* x_row = pad_buffer + (oh - oh0) * s.stride_h * plan.pitch;
        if (act == Activation::relu) {
          narrow_forward_row<T, true>(plan, x_row, w_packed, bias_packed, y_row, cols);
        } else {
          narrow_forward_row<T, false>(plan, x_row, w_packed, bias_packed, y_row, cols);
          activate_row(act, y_row, cols * s.out_c);
        }
        continue;
      }
      const T* x_row = pad_buffer + (oh - oh0) * s.stride_h * plan.padded_w * s.in_c;
      int64_t block = 0;
      if constexpr (kPairPixels > 0) {  // pairs of whole blocks, the row's last pixels one block at a time
        constexpr int P = kPairPixels;
        const int64_t pixel_step = s.stride_w * s.in_c, paired = cols / P * P;
        for (; (block + 2) * kBlock<T> <= s.out_c && paired > 0; block += 2) {
          const int64_t oc0 = block * kBlock<T>;
          const T* w_block = w_packed + block * plan.taps * kBlock<T>;
          for (int64_t ow = 0; ow < paired; ow += P) {
            const T* xp = x_row + ow * pixel_step;
            T* yp = y_row + ow * s.out_c + oc0;
            if (act == Activation::relu) {
              forward_pair_tile<T, P, true>(xp, pixel_step, plan.tap_offsets, plan.taps, w_block, bias_packed + oc0,
                                            yp, s.out_c);
            } else {
              forward_pair_tile<T, P, false>(xp, pixel_step, plan.tap_offsets, plan.taps, w_block, bias_packed + oc0,
                                             yp, s.out_c);
            }
          }
          for (int64_t b = block; b < block + 2 && paired < cols; ++b) {
            const int64_t c0 = b * kBlock<T>;
            const T* wb = w_packed + b * plan.taps * kBlock<T>;
            const T* xr = x_row + paired * pixel_step;
            T* yr = y_row + paired * s.out_c + c0;
            if (act == Activation::relu) {
              forward_row_block<T, true>(plan, xr, wb, bias_packed + c0, yr, cols - paired, kBlock<T>);
            } else {
              forward_row_block<T, false>(plan, xr, wb, bias_packed + c0, yr, cols - paired, kBlock<T>);
            }
          }
        }
      }
      for (; block < plan.oc_blocks; ++block) {
        const int64_t oc0 = block * kBlock<T>;
        const int64_t valid = std::min<int64_t>(kBlock<T>, s.out_c - oc0);
        const T* w_block = w_packed + block * plan.taps * kBlock<T>;
        if (act == Activation::relu) {
          forward_row_block<T, true>(plan, x_row, w_block, bias_packed + oc0, y_row + oc0, cols, valid);
        } else {
          forward_row_block<T, false>(plan, x_row, w_block, bias_packed + oc0, y_row + oc0, cols, valid);
        }
      }
      if (act != Activation::relu) activate_row(act, y_row, cols * s.out_c);
    }
  });
}

// Adds the weight gradient of output rows [row_begin, row_end) into dw (taps x out_c).
template <typename T>
void conv2d_direct_backward_weights_rows(const DirectConvPlan& plan, const T* dy_nhwc, const T* x_nhwc, int64_t row_begin,
                                         int64_t row_end, T* pad_buffer, T* dw_hwio) {
  const Conv2dShape& s = plan.shape;
  // Balanced tap blocks: 27 taps run as 9 + 9 + 9, not 12 + 12 + 3.
  const int64_t tap_blocks = (plan.taps + kMaxTapBlock - 1) / kMaxTapBlock;
  const int64_t tap_block = (plan.taps + tap_blocks - 1) / tap_blocks;
  T* dw_lanes = plan.narrow ? pad_buffer + plan.lanes_offset : nullptr;
  if (plan.narrow) std::fill(dw_lanes, dw_lanes + plan.taps * s.out_c * kLanes<T>, T(0));
  for_each_padded_segment(plan, x_nhwc, row_begin, row_end, pad_buffer,
                          [&](int64_t n, int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1) {
    const T* dy_rows = dy_nhwc + ((n * s.out_h + oh0) * s.out_w + ow0) * s.out_c;
    if (plan.narrow) {
      // dy's band planar ([oc][row][dy_pitch], zeros beyond the tile's columns).
      const int64_t rows = oh1 - oh0, cols = ow1 - ow0;
      T* dy_planar = pad_buffer + plan.dy_offset;
      std::fill(dy_planar, dy_planar + s.out_c * rows * plan.dy_pitch, T(0));
      for (int64_t r = 0; r < rows; ++r) {
        const T* src = dy_rows + r * s.out_w * s.out_c;
        for (int64_t q = 0; q < cols; ++q) {
          for (int64_t o = 0; o < s.out_c; ++o) dy_planar[(o * rows + r) * plan.dy_pitch + q] = src[q * s.out_c + o];
        }
      }
      const int64_t group = narrow_group(s.out_c, kNarrowMaxChannels);
      for (int64_t oc0 = 0; oc0 < s.out_c; oc0 += group) {
        const int g = static_cast<int>(std::min(group, s.out_c - oc0));
        narrow_backward_weights_group<T, kNarrowMaxChannels>(g, plan, pad_buffer, dy_planar, rows, cols, dw_lanes,
                                                             oc0);
      }
      return;
    }
    for (int64_t oc0 = 0; oc0 < s.out_c; oc0 += kBlock<T>) {
      const int64_t valid = std::min<int64_t>(kBlock<T>, s.out_c - oc0);
      for (int64_t t0 = 0; t0 < plan.taps; t0 += tap_block) {
        const int kb = static_cast<int>(std::min(tap_block, plan.taps - t0));
        backward_weights_block<T, kMaxTapBlock>(kb, s, plan.padded_w, pad_buffer, oh1 - oh0, ow1 - ow0, dy_rows + oc0,
                                                plan.tap_offsets + t0, valid, dw_hwio + t0 * s.out_c + oc0);
      }
    }
  });
  if (plan.narrow) {  // the chunk's lanes summed, once
    for (int64_t i = 0; i < plan.taps * s.out_c; ++i) {
      T sum = 0;
      for (int l = 0; l < kLanes<T>; ++l) sum += dw_lanes[i * kLanes<T> + l];
      dw_hwio[i] += sum;
    }
  }
}

template <typename T>
DirectConvKernels<T> direct_conv_kernel_table() {
  return {&conv2d_direct_forward_rows<T>, &conv2d_direct_backward_weights_rows<T>};
}
template DirectConvKernels<float> direct_conv_kernel_table<float>();
template DirectConvKernels<double> direct_conv_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE

#undef FASTNN_DIRECT_INLINE
