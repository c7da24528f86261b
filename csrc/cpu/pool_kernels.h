// Pooling kernels, written once as loops over a fixed-size channel block that
// the compiler vectorises for the ISA of the including translation unit
// (pool_portable.cpp, _avx2.cpp, _avx512.cpp).  Each kernel handles a range
// of rows (batch x output rows, or batch x input rows for the avg backward);
// pool.cpp splits the rows across threads.
//
// Max-pool keeps the running max and the winning pixel of each whole vector of
// channels in registers (GCC vector types of this ISA's width, cpu/vector_width.h)
// across the window's taps; the rest, and the other kernels, use a block of kBlock values in a small stack
// array that stays in L1 while every tap streams over it: one vertical
// compare/blend (or add) per channel vector and tap.  (Registers: 1.17-1.21x on
// the seed's first pool, 32 channels; equal at 64, A/B.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "common/shapes.h"
#include "cpu/pool.h"
#include "cpu/pool_table.h"
#include "cpu/vector_width.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including pool_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

// int64 lanes of one vector: the flat indices are written a vector at a time.
constexpr int64_t kIndexLanes = kVectorBytes / 8;
typedef int64_t IndexVector __attribute__((vector_size(kVectorBytes)));

// lanes [Offset, Offset + N) of v (N = the sequence's length).
template <size_t Offset, typename V, size_t... I>
inline auto lanes_of(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, static_cast<int>(Offset + I)...);
}

// The winners' offsets of one channel vector (int32 or int64 lanes, as wide as the data's),
// widened to int64 in parts of kIndexLanes lanes: two parts for float, one for double.
// Widened from registers: element-wise extraction cost as much as the taps.
template <int64_t L, typename V>
inline void widen_winners(V where, IndexVector* parts) {
  static_assert(L == kIndexLanes || L == 2 * kIndexLanes, "a vector of float or double");
  parts[0] = __builtin_convertvector(lanes_of<0>(where, std::make_index_sequence<kIndexLanes>{}), IndexVector);
  if constexpr (L == 2 * kIndexLanes) {
    parts[1] = __builtin_convertvector(lanes_of<kIndexLanes>(where, std::make_index_sequence<kIndexLanes>{}),
                                       IndexVector);
  }
}

// {0, 1, ..., kIndexLanes - 1}
inline IndexVector index_lanes() {
  IndexVector lane{};
  for (int64_t i = 0; i < kIndexLanes; ++i) lane[i] = i;
  return lane;
}

// Four 512-bit vectors: enough independent chains to hide compare latency.
template <typename T>
constexpr int64_t kBlock = 256 / static_cast<int64_t>(sizeof(T));

// Real (unpadded) input cells of a window, or the output windows that hold a cell:
// [lo, hi), from common/shapes.h (window_cells, windows_holding).
using WindowSpan = IndexRange<int64_t>;

// Spatial is the type of the winning pixel's index within one image (row * width +
// col): int32 for float keeps the blend the same width as the compare.
template <typename T, typename Spatial>
void max_pool2d_rows(const Pool2dShape& s, const T* __restrict x, T* __restrict y,
                     int64_t* __restrict argmax, bool argmax_nchw, int64_t row_begin, int64_t row_end) {
  constexpr int64_t B = kBlock<T>;
  const int64_t C = s.channels, W = s.width, HW = s.height * s.width;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / s.out_height, oh = row % s.out_height;
    const WindowSpan rows = window_cells(oh, s.stride_h, s.pad_h, s.kernel_h, s.height);
    const T* x_n = x + n * HW * C;
    for (int64_t ow = 0; ow < s.out_width; ++ow) {
      const WindowSpan cols = window_cells(ow, s.stride_w, s.pad_w, s.kernel_w, s.width);
      T* y_px = y + (row * s.out_width + ow) * C;
      int64_t* a_px = argmax + (row * s.out_width + ow) * C;
      int64_t c0 = 0;
      if constexpr (sizeof(Spatial) == sizeof(T)) {
        // Whole vectors of channels in registers: the running max and winner never
        // leave them across the window's taps.
        typedef T VT __attribute__((vector_size(kVectorBytes)));
        typedef Spatial VS __attribute__((vector_size(kVectorBytes)));
        constexpr int64_t L = kVectorBytes / sizeof(T);
        const Spatial first = static_cast<Spatial>(rows.lo * W + cols.lo);
        for (; c0 + L <= C; c0 += L) {
          VT best, v;
          std::memcpy(&best, x_n + static_cast<int64_t>(first) * C + c0, sizeof best);
          VS where = VS{} + first;
          for (int64_t ih = rows.lo; ih < rows.hi; ++ih) {
            for (int64_t iw = cols.lo; iw < cols.hi; ++iw) {
              const Spatial here = static_cast<Spatial>(ih * W + iw);
              std::memcpy(&v, x_n + (ih * W + iw) * C + c0, sizeof v);
              // As below: v beats best, or v is the window's first NaN.
              const VS take = ~(v <= best) & (best == best);
              best = take ? v : best;
              where = take ? (VS{} + here) : where;
            }
          }
          std::memcpy(y_px + c0, &best, sizeof best);
          const IndexVector lane = index_lanes();
          IndexVector parts[L / kIndexLanes];
          widen_winners<L>(where, parts);
#pragma GCC unroll 2
          for (int64_t h = 0; h < L; h += kIndexLanes) {
            const IndexVector w64 = parts[h / kIndexLanes];
            const IndexVector a =
                argmax_nchw ? w64 + (n * C + c0 + h) * HW + lane * HW : w64 * C + (n * HW * C + c0 + h) + lane;
            std::memcpy(a_px + c0 + h, &a, sizeof a);
          }
        }
      }
      for (; c0 < C; c0 += B) {
        const int64_t nb = std::min(B, C - c0);
        T best[B];
        Spatial where[B];
        // Start from the first real cell: padding never wins, and an all -inf
        // window reports that cell.  Comparing it with itself changes nothing.
        const Spatial first = static_cast<Spatial>(rows.lo * W + cols.lo);
        const T* x_first = x_n + static_cast<int64_t>(first) * C + c0;
        for (int64_t j = 0; j < nb; ++j) { best[j] = x_first[j]; where[j] = first; }
        for (int64_t ih = rows.lo; ih < rows.hi; ++ih) {
          for (int64_t iw = cols.lo; iw < cols.hi; ++iw) {
            const Spatial here = static_cast<Spatial>(ih * W + iw);
            const T* x_px = x_n + (ih * W + iw) * C + c0;
            for (int64_t j = 0; j < nb; ++j) {
              // Take v if it beats best, or if v is the window's first NaN
              // (!(v <= b) also holds for a NaN v; b == b is false once best is NaN).
              const T v = x_px[j], b = best[j];
              const bool take = !(v <= b) & (b == b);
              best[j] = take ? v : b;
              where[j] = take ? here : where[j];
            }
          }
        }
        for (int64_t j = 0; j < nb; ++j) y_px[c0 + j] = best[j];
        if (argmax_nchw) {
          for (int64_t j = 0; j < nb; ++j) a_px[c0 + j] = (n * C + c0 + j) * HW + where[j];
        } else {
          for (int64_t j = 0; j < nb; ++j) a_px[c0 + j] = (n * HW + where[j]) * C + c0 + j;
        }
      }
    }
  }
}

// The common 2x2, stride-2, unpadded max-pool: whole vectors of channels in
// registers, the rest of the channels one by one; the four taps unrolled, and the winner tracked as its
// offset from the window's first cell (0, one pixel, one row, both), so the
// flat index is one widening add.  Same order, ties and NaN rule as above.
// index_base is added to every index (a slice of a larger tensor: fusion).
// take (0 or all ones) ? a : b, on the values' bits.
template <typename T>
inline T select_bits(int64_t take, T a, T b) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits ab, bb;
  std::memcpy(&ab, &a, sizeof a);
  std::memcpy(&bb, &b, sizeof b);
  const Bits mask = static_cast<Bits>(take);
  const Bits r = (ab & mask) | (bb & ~mask);
  T out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

// One value's 2x2 window, top[0], top[pixel], bottom[0], bottom[pixel] (the
// window order), by the rule above: the max, or the first NaN; *where is the
// winner's offset (0, px, row or row + px).
template <typename T>
inline T max_of_2x2(const T* top, const T* bottom, int64_t pixel, int64_t px, int64_t row, int64_t* where) {
  T best = top[0];
  int64_t at = 0;
  auto tap = [&](T v, int64_t rel) {
    const int64_t take = -static_cast<int64_t>(!(v <= best) & (best == best));
    best = select_bits(take, v, best);
    at = (rel & take) | (at & ~take);
  };
  tap(top[pixel], px);
  tap(bottom[0], row);
  tap(bottom[pixel], row + px);
  *where = at;
  return best;
}

template <typename T, typename Rel>
void max_pool2d_rows_2x2(const Pool2dShape& s, const T* __restrict x, T* __restrict y,
                         int64_t* __restrict argmax, bool argmax_nchw, int64_t index_base, int64_t row_begin,
                         int64_t row_end) {
  typedef T VT __attribute__((vector_size(kVectorBytes)));
  typedef Rel VR __attribute__((vector_size(kVectorBytes)));
  constexpr int64_t L = kVectorBytes / sizeof(T);
  static_assert(sizeof(Rel) == sizeof(T), "the winner's offset blends at the data's lane width");
  const int64_t C = s.channels, W = s.width, HW = s.height * s.width;
  // Offsets of the window's cells from its first, in the argmax's order.
  const int64_t px = argmax_nchw ? 1 : C, row = argmax_nchw ? W : W * C;
  const VR rel01 = VR{} + static_cast<Rel>(px), rel10 = VR{} + static_cast<Rel>(row),
           rel11 = VR{} + static_cast<Rel>(row + px);
  const IndexVector lane = index_lanes();
  const IndexVector lane_step = argmax_nchw ? lane * HW : lane;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / s.out_height, oh = r % s.out_height;
    const T* x0 = x + (n * HW + 2 * oh * W) * C;
    const T* x1 = x0 + W * C;
    T* y_row = y + r * s.out_width * C;
    int64_t* a_row = argmax + r * s.out_width * C;
    for (int64_t ow = 0; ow < s.out_width; ++ow) {
      const int64_t first = 2 * oh * W + 2 * ow;  // the window's first cell in the image
      const T* p0 = x0 + 2 * ow * C;
      const T* p1 = x1 + 2 * ow * C;
      int64_t c0 = 0;
      for (; c0 + L <= C; c0 += L) {
        VT best;
        std::memcpy(&best, p0 + c0, sizeof best);
        VR where = VR{};
        // Take v if it beats best, or if v is the window's first NaN.
        auto tap = [&](const T* cell, const VR& rel) {
          VT v;
          std::memcpy(&v, cell, sizeof v);
          const VR take = ~(v <= best) & (best == best);
          best = take ? v : best;
          where = take ? rel : where;
        };
        tap(p0 + C + c0, rel01);
        tap(p1 + c0, rel10);
        tap(p1 + C + c0, rel11);
        std::memcpy(y_row + ow * C + c0, &best, sizeof best);
        const int64_t base = index_base + (argmax_nchw ? (n * C + c0) * HW + first : (n * HW + first) * C + c0);
        IndexVector parts[L / kIndexLanes];
        widen_winners<L>(where, parts);
#pragma GCC unroll 2
        for (int64_t h = 0; h < L; h += kIndexLanes) {
          const IndexVector a = parts[h / kIndexLanes] + (base + (argmax_nchw ? h * HW : h)) + lane_step;
          std::memcpy(a_row + ow * C + c0 + h, &a, sizeof a);
        }
      }
      // The channels past the last whole block (C % L of them), one at a time with
      // the same rule, by masks rather than branches (which data-dependent maxima
      // mispredict).  Narrow layers (C < L) take max_pool2d_rows_2x2_narrow instead.
      for (; c0 < C; ++c0) {
        int64_t where;
        const T best = max_of_2x2(p0 + c0, p1 + c0, C, px, row, &where);
        y_row[ow * C + c0] = best;
        a_row[ow * C + c0] =
            index_base + where + (argmax_nchw ? (n * C + c0) * HW + first : (n * HW + first) * C + c0);
      }
    }
  }
}

// The 2x2 pool on fewer channels than a vector holds (LeNet's 6): lanes over the
// flat row instead of channels.  At flat index k of a top row, the window taps
// in order are top[k], top[k + C], bottom[k], bottom[k + C]; for k = 2*ow*C + c
// they are output (ow, c)'s window.  So the rule runs over every k of the row
// pair in vectors (contiguous loads at four offsets, half the lanes computing
// windows no output needs) and each output pixel's C results are copied out.
template <typename T, typename Rel>
void max_pool2d_rows_2x2_narrow(const Pool2dShape& s, const T* __restrict x, T* __restrict y,
                                int64_t* __restrict argmax, bool argmax_nchw, int64_t index_base,
                                int64_t row_begin, int64_t row_end) {
  typedef T VT __attribute__((vector_size(kVectorBytes)));
  typedef Rel VR __attribute__((vector_size(kVectorBytes)));
  constexpr int64_t L = kVectorBytes / sizeof(T);
  constexpr int64_t kChunk = 16 * L;  // flat values per pass, on the stack
  const int64_t C = s.channels, W = s.width, HW = s.height * s.width;
  if (C == 0) return;  // an empty channel axis: no outputs
  const int64_t px = argmax_nchw ? 1 : C, row = argmax_nchw ? W : W * C;
  const int64_t pairs_per_chunk = std::max<int64_t>(1, kChunk / (2 * C));
  alignas(64) T best_of[kChunk + L];
  alignas(64) Rel where_of[kChunk + L];
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / s.out_height, oh = r % s.out_height;
    const T* x0 = x + (n * HW + 2 * oh * W) * C;
    const T* x1 = x0 + W * C;
    T* y_row = y + r * s.out_width * C;
    int64_t* a_row = argmax + r * s.out_width * C;
    for (int64_t ow0 = 0; ow0 < s.out_width; ow0 += pairs_per_chunk) {
      const int64_t ow1 = std::min(s.out_width, ow0 + pairs_per_chunk);
      const int64_t k0 = 2 * ow0 * C, count = (2 * (ow1 - ow0) - 1) * C;  // through the last window's start
      int64_t k = 0;
      for (; k + L <= count; k += L) {
        VT best, v;
        std::memcpy(&best, x0 + k0 + k, sizeof best);
        VR where = VR{};
        auto tap = [&](const T* cell, Rel rel) {
          std::memcpy(&v, cell, sizeof v);
          const VR take = ~(v <= best) & (best == best);
          best = take ? v : best;
          where = take ? (VR{} + rel) : where;
        };
        tap(x0 + k0 + k + C, static_cast<Rel>(px));
        tap(x1 + k0 + k, static_cast<Rel>(row));
        tap(x1 + k0 + k + C, static_cast<Rel>(row + px));
        std::memcpy(best_of + k, &best, sizeof best);
        std::memcpy(where_of + k, &where, sizeof where);
      }
      for (; k < count; ++k) {  // the tail, one value at a time (no reads past the rows)
        int64_t where;
        best_of[k] = max_of_2x2(x0 + k0 + k, x1 + k0 + k, C, px, row, &where);
        where_of[k] = static_cast<Rel>(where);
      }
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t first = 2 * oh * W + 2 * ow, j = 2 * (ow - ow0) * C;
        for (int64_t c = 0; c < C; ++c) {
          y_row[ow * C + c] = best_of[j + c];
          a_row[ow * C + c] = index_base + static_cast<int64_t>(where_of[j + c]) +
                              (argmax_nchw ? (n * C + c) * HW + first : (n * HW + first) * C + c);
        }
      }
    }
  }
}

// The 2x2 kernel for this channel count.
template <typename T, typename Rel>
void max_pool2d_rows_2x2_any(const Pool2dShape& s, const T* x, T* y, int64_t* argmax, bool argmax_nchw,
                             int64_t index_base, int64_t row_begin, int64_t row_end) {
  if (s.channels < kVectorBytes / static_cast<int64_t>(sizeof(T))) {
    max_pool2d_rows_2x2_narrow<T, Rel>(s, x, y, argmax, argmax_nchw, index_base, row_begin, row_end);
  } else {
    max_pool2d_rows_2x2<T, Rel>(s, x, y, argmax, argmax_nchw, index_base, row_begin, row_end);
  }
}

inline int64_t window_divisor(const WindowSpan& rows, const WindowSpan& cols, const Pool2dShape& s,
                              bool count_include_pad) {
  return count_include_pad ? s.kernel_h * s.kernel_w : (rows.hi - rows.lo) * (cols.hi - cols.lo);
}

template <typename T>
void avg_pool2d_rows(const Pool2dShape& s, const T* __restrict x, T* __restrict y, bool count_include_pad,
                     int64_t row_begin, int64_t row_end) {
  constexpr int64_t B = kBlock<T>;
  const int64_t C = s.channels, W = s.width;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / s.out_height, oh = row % s.out_height;
    const WindowSpan rows = window_cells(oh, s.stride_h, s.pad_h, s.kernel_h, s.height);
    const T* x_n = x + n * s.height * W * C;
    for (int64_t ow = 0; ow < s.out_width; ++ow) {
      const WindowSpan cols = window_cells(ow, s.stride_w, s.pad_w, s.kernel_w, s.width);
      const T inv = T(1) / static_cast<T>(window_divisor(rows, cols, s, count_include_pad));
      T* y_px = y + (row * s.out_width + ow) * C;
      for (int64_t c0 = 0; c0 < C; c0 += B) {
        const int64_t nb = std::min(B, C - c0);
        T sum[B] = {};
        for (int64_t ih = rows.lo; ih < rows.hi; ++ih) {
          for (int64_t iw = cols.lo; iw < cols.hi; ++iw) {
            const T* x_px = x_n + (ih * W + iw) * C + c0;
            for (int64_t j = 0; j < nb; ++j) sum[j] += x_px[j];
          }
        }
        for (int64_t j = 0; j < nb; ++j) y_px[c0 + j] = sum[j] * inv;
      }
    }
  }
}

template <typename T>
void avg_pool2d_backward_rows(const Pool2dShape& s, const T* __restrict dy, T* __restrict dx,
                              bool count_include_pad, int64_t row_begin, int64_t row_end) {
  constexpr int64_t B = kBlock<T>;
  const int64_t C = s.channels;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / s.height, ih = row % s.height;
    const WindowSpan out_rows = windows_holding(ih, s.stride_h, s.pad_h, s.kernel_h, s.out_height);
    const T* dy_n = dy + n * s.out_height * s.out_width * C;
    for (int64_t iw = 0; iw < s.width; ++iw) {
      const WindowSpan out_cols = windows_holding(iw, s.stride_w, s.pad_w, s.kernel_w, s.out_width);
      T* dx_px = dx + (row * s.width + iw) * C;
      for (int64_t c0 = 0; c0 < C; c0 += B) {
        const int64_t nb = std::min(B, C - c0);
        T sum[B] = {};
        for (int64_t oh = out_rows.lo; oh < out_rows.hi; ++oh) {
          const WindowSpan rows = window_cells(oh, s.stride_h, s.pad_h, s.kernel_h, s.height);
          for (int64_t ow = out_cols.lo; ow < out_cols.hi; ++ow) {
            const WindowSpan cols = window_cells(ow, s.stride_w, s.pad_w, s.kernel_w, s.width);
            const T inv = T(1) / static_cast<T>(window_divisor(rows, cols, s, count_include_pad));
            const T* dy_px = dy_n + (oh * s.out_width + ow) * C + c0;
            for (int64_t j = 0; j < nb; ++j) sum[j] += dy_px[j] * inv;
          }
        }
        for (int64_t j = 0; j < nb; ++j) dx_px[c0 + j] = sum[j];
      }
    }
  }
}

template <typename T>
PoolKernels<T> pool_kernel_table() {
  using Rel = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  PoolKernels<T> table{};
  if constexpr (sizeof(T) == 4) table.max_rows_int32 = &max_pool2d_rows<T, int32_t>;
  table.max_rows_int64 = &max_pool2d_rows<T, int64_t>;
  table.max_rows_2x2 = &max_pool2d_rows_2x2_any<T, Rel>;
  table.avg_rows = &avg_pool2d_rows<T>;
  table.avg_backward_rows = &avg_pool2d_backward_rows<T>;
  return table;
}
template PoolKernels<float> pool_kernel_table<float>();
template PoolKernels<double> pool_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
