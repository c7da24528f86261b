// One row of C (m = 1: a dense layer on one example), compiled per ISA like the
// tiles (microkernel.h): RowTask in gemm_kernels.h says what it computes.
//
// With one row of A a register tile wastes MR - 1 of its MR rows and the driver
// reads B once anyway, so B is streamed as it lies, unpacked:
//  * row-major B by rows: 8 vectors of columns at a time (4 below AVX-512), two
//    accumulators each (FMA latency x ports), a broadcast of a[p] per row p;
//  * a transposed B (PyTorch's (out, in) weights) by four of its rows at a time:
//    dot products with the contiguous a, two accumulators a row.
// Intel Xeon (AVX-512), one thread, 1 x 3136 times 3136 x 128: 32 us through the
// 6 x 64 tile (1 of its 6 rows used), 18 here (OpenBLAS 21); times a transposed
// 128 x 3136 (PyTorch's layout), 83 us against 22.  The threads: gemm.cpp.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/gemm/gemm_kernels.h"
#include "cpu/gemm/microkernel.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including gemm/row.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

// The tiles' epilogue on one product (Tile::store on a single element).
template <typename T>
FASTNN_GEMM_INLINE T finish_row_element(const RowTask<T>& t, T product, int64_t j) {
  T r = product * t.alpha;
  if (t.beta != T(0)) r = t.beta * t.c[j] + r;
  if (t.bias != nullptr) r += t.bias[j];
  switch (t.act) {
    case Activation::relu: return r < T(0) ? T(0) : r;
    case Activation::sigmoid: return sigmoid_scalar(r);
    case Activation::tanh: return tanh_scalar(r);
    case Activation::none: break;
  }
  return r;
}

// Columns [j0, j0 + NV * W) of a row-major B (kPartial: the last vector only its
// first `rest` lanes).  Two accumulators a vector, even and odd rows p, so a block of
// 4 vectors has 8 FMA chains in flight (latency x ports); every column is summed
// alike whatever block it falls in, so a split over threads changes no result.
template <typename T, int NV, bool kPartial>
FASTNN_GEMM_INLINE void row_block(const RowTask<T>& t, int64_t j0, int rest = 0) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int W = S::kWidth, P = 2;
  V acc[P][NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) acc[q][v] = S::zero();
  }
  const T* b = t.b + j0;
  auto step = [&](int64_t p, int q) FASTNN_GEMM_INLINE_LAMBDA {
    const V ap = S::set1(t.a[p * t.a_step]);
    const T* bp = b + p * t.ldb;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const V bv = (kPartial && v == NV - 1) ? S::load_partial(bp + v * W, rest) : S::load(bp + v * W);
      acc[q][v] = S::fmadd(ap, bv, acc[q][v]);
    }
  };
  int64_t p = 0;
  for (; p + 2 <= t.kc; p += 2) {
    step(p, 0);
    step(p + 1, 1);
  }
  if (p < t.kc) step(p, 0);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) acc[0][v] = S::add(acc[0][v], acc[1][v]);
  const Epilogue<T> ep{t.alpha, t.beta, true, true, t.bias, t.act};
  const int cols = kPartial ? (NV - 1) * W + rest : NV * W;
  V out[1][NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) out[0][v] = acc[0][v];
  Tile<T, 1, NV>::template store<!kPartial>(out, t.c + j0, 0, 1, cols, ep,
                                            t.bias == nullptr ? nullptr : t.bias + j0);
}

// The columns [j0, nc) of a row-major B, fewer than a whole block's.
template <typename T>
void row_tail(const RowTask<T>& t, int64_t j0) {
  constexpr int W = Simd<T>::kWidth;
  int64_t vectors = (t.nc - j0) / W;
  const int rest = static_cast<int>((t.nc - j0) % W);
  if (vectors >= 4) { row_block<T, 4, false>(t, j0); j0 += 4 * W; vectors -= 4; }
  if (vectors >= 2) { row_block<T, 2, false>(t, j0); j0 += 2 * W; vectors -= 2; }
  if (vectors >= 1) { row_block<T, 1, false>(t, j0); j0 += W; }
  if (rest) row_block<T, 1, true>(t, j0, rest);
}

// Outputs [j0, j0 + J) of a transposed B, J <= 4: four dot products with a.
template <typename T, int J>
FASTNN_GEMM_INLINE void dot_block(const RowTask<T>& t, int64_t j0) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int W = S::kWidth;
  V even[J], odd[J];
#pragma GCC unroll 4
  for (int c = 0; c < J; ++c) even[c] = odd[c] = S::zero();
  const T* rows[J];
#pragma GCC unroll 4
  for (int c = 0; c < J; ++c) rows[c] = t.b + (j0 + c) * t.ldb;
  int64_t p = 0;
  for (; p + 2 * W <= t.kc; p += 2 * W) {
    const V a0 = S::load(t.a + p), a1 = S::load(t.a + p + W);
#pragma GCC unroll 4
    for (int c = 0; c < J; ++c) {
      even[c] = S::fmadd(a0, S::load(rows[c] + p), even[c]);
      odd[c] = S::fmadd(a1, S::load(rows[c] + p + W), odd[c]);
    }
  }
  for (; p < t.kc; p += W) {
    const int n = static_cast<int>(std::min<int64_t>(W, t.kc - p));
    const V a0 = S::load_partial(t.a + p, n);
#pragma GCC unroll 4
    for (int c = 0; c < J; ++c) even[c] = S::fmadd(a0, S::load_partial(rows[c] + p, n), even[c]);
  }
#pragma GCC unroll 4
  for (int c = 0; c < J; ++c) {
    T lanes[W];
    S::store(lanes, S::add(even[c], odd[c]));
    T sum = T(0);
    for (int i = 0; i < W; ++i) sum += lanes[i];  // a fixed order: reproducible
    t.c[j0 + c] = finish_row_element(t, sum, j0 + c);
  }
}

template <typename T>
void row_kernel(const RowTask<T>& t) {
  if (t.trans_b) {
    int64_t j = 0;
    for (; j + 4 <= t.nc; j += 4) dot_block<T, 4>(t, j);
    switch (t.nc - j) {
      case 3: dot_block<T, 3>(t, j); break;
      case 2: dot_block<T, 2>(t, j); break;
      case 1: dot_block<T, 1>(t, j); break;
      default: break;
    }
    return;
  }
  // 8 vectors where there are 32 vector registers (AVX-512: 16 accumulators), else 4.
  constexpr int NV = sizeof(typename Simd<T>::V) == 64 ? 8 : 4;
  constexpr int block = NV * Simd<T>::kWidth;
  int64_t j = 0;
  for (; j + block <= t.nc; j += block) row_block<T, NV, false>(t, j);
  if (j < t.nc) row_tail(t, j);
}

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
