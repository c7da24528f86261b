// GEMM packing (BLIS-style, layouts in gemm_kernels.h): an A block into
// k-major MR-row panels, a B block into k-major NR-column panels, zero-padded.
// Written once over a small SIMD trait and compiled per ISA:
// microkernel_<isa>.cpp defines FASTNN_ISA_NAMESPACE (gemm_impl::<isa>) and
// Simd<float>/Simd<double> for its vector width, then includes this file.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/gemm/microkernel.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including gemm/pack.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

// dst[0, n) = src[0, n) for n <= NV*W, in vectors.
template <typename T, int N>
FASTNN_GEMM_INLINE void copy_short(T* __restrict dst, const T* __restrict src, int n) {
  using S = Simd<T>;
  constexpr int W = S::kWidth;
#pragma GCC unroll 8
  for (int j = 0; j < N; j += W) {
    const int lanes = std::max(0, std::min(W, n - j));
    if (j + W <= N && lanes == W) {
      S::store(dst + j, S::load(src + j));
    } else {
      // Lanes past n come out as zero: the padding of a packed panel.
      S::store_partial(dst + j, S::load_partial(src + j, lanes), std::min(W, N - j));
    }
  }
}

// dst[p*N + i] = src[i*lds + p] for p < kc, i < rows (<= N); lanes past rows
// are zero.  The portable transposing copy, for what pack_transposed leaves:
// rows are read in chunks of 16 so the writes stay within a few lines.
template <typename T, int N>
void transpose_short(const T* src, int64_t lds, int rows, int64_t kc, T* dst) {
  constexpr int64_t kChunk = 16;
  for (int64_t p0 = 0; p0 < kc; p0 += kChunk) {
    const int64_t pn = std::min(kChunk, kc - p0);
    for (int i = 0; i < N; ++i) {
      if (i < rows) {
        const T* s = src + i * lds + p0;
        for (int64_t p = 0; p < pn; ++p) dst[(p0 + p) * N + i] = s[p];
      } else {
        for (int64_t p = 0; p < pn; ++p) dst[(p0 + p) * N + i] = T(0);
      }
    }
  }
}

// A block (mc x kc of op(A)) -> k-major MR-row panels, zero-padded rows.
template <typename T, int MR>
void pack_a(int64_t mc, int64_t kc, const T* a, int64_t lda, bool trans_a, T* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int mb = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    T* d = dst + (ir / MR) * kc * MR;
    if (!trans_a) {
      // op(A)(i, p) = a[i*lda + p]: a transpose.
      const T* src = a + ir * lda;
      if (!pack_transposed(src, lda, mb, kc, d, MR, MR)) transpose_short<T, MR>(src, lda, mb, kc, d);
    } else {
      // op(A)(i, p) = a[p*lda + i]: MR contiguous elements per k step.
      const T* src = a + ir;
      for (int64_t p = 0; p < kc; ++p) copy_short<T, MR>(d + p * MR, src + p * lda, mb);
    }
  }
}

// B block (kc x nc of op(B)) -> k-major NR-column panels, zero-padded columns.
template <typename T, int NR>
void pack_b(int64_t kc, int64_t nc, const T* b, int64_t ldb, bool trans_b, T* dst) {
  if (!trans_b) {
    // op(B)(p, j) = b[p*ldb + j]: row p is read once, left to right, and dealt
    // out NR elements to each panel (B usually comes from L3 or memory, where
    // a sequential read streams and a column of short runs waits).
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b + p * ldb;
      T* d = dst + p * NR;
      for (int64_t jr = 0; jr < nc; jr += NR, d += kc * NR) {
        copy_short<T, NR>(d, src + jr, static_cast<int>(std::min<int64_t>(NR, nc - jr)));
      }
    }
    return;
  }
  // op(B)(p, j) = b[j*ldb + p]: a transpose, in groups of W columns.
  constexpr int W = Simd<T>::kWidth;
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int nb = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    T* d = dst + (jr / NR) * kc * NR;
    bool done = true;
    for (int j0 = 0; j0 < NR && done; j0 += W) {
      const int rows = std::max(0, std::min(W, nb - j0));
      done = pack_transposed(b + (jr + std::min(j0, nb)) * ldb, ldb, rows, kc, d + j0, NR, W);
    }
    if (!done) transpose_short<T, NR>(b + jr * ldb, ldb, nb, kc, d);
  }
}

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
