// Gathered GEMM kernel (convolution weight gradients without an im2col copy;
// the task is GatherTask in gemm_kernels.h).
// Written once over a small SIMD trait and compiled per ISA:
// microkernel_<isa>.cpp defines FASTNN_ISA_NAMESPACE (gemm_impl::<isa>) and
// Simd<float>/Simd<double> for its vector width, then includes this file.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/gemm/microkernel.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including gemm/indirect/gather.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

// C tile += gathered A (k-major runs) x B rows.  kTail: the tile has mb < MR
// rows, and row i reads element idx[i] (rows past mb repeat row 0), so no
// load leaves a run; kFullN: all NV vectors of the B rows are in range.
template <typename T, int MR, int NV, bool kTail, bool kFullN>
FASTNN_GEMM_INLINE void gather_tile(const gemm_impl::GatherTask<T>& t, int64_t ir, int64_t jr, int mb, int nb) {
  using K = Tile<T, MR, NV>;
  using S = typename K::S;
  using V = typename K::V;
  constexpr int W = K::W;
  int lanes[NV];
  for (int v = 0; v < NV; ++v) lanes[v] = kFullN ? W : std::max(0, std::min(W, nb - v * W));
  int idx[MR];
  for (int i = 0; i < MR; ++i) idx[i] = i < mb ? i : 0;
  T* cp = t.c + ir * t.ldc + jr;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < NV; ++v) {
      acc[i][v] = i < mb ? (kFullN ? S::load(cp + i * t.ldc + v * W) : S::load_partial(cp + i * t.ldc + v * W, lanes[v]))
                         : S::zero();
    }
  }
  for (int64_t p = 0; p < t.kc; ++p) {
    const T* bp = t.b_rows[p] + jr;
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = kFullN ? S::load(bp + v * W) : S::load_partial(bp + v * W, lanes[v]);
    const T* a = t.runs[p] + ir;
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V ai = S::set1(a[kTail ? idx[i] : i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < mb; ++i) {
    for (int v = 0; v < NV; ++v) {
      if (kFullN) {
        S::store(cp + i * t.ldc + v * W, acc[i][v]);
      } else {
        S::store_partial(cp + i * t.ldc + v * W, acc[i][v], lanes[v]);
      }
    }
  }
}

// Every MR x NR tile of C takes all kc steps with its accumulators in
// registers (callers keep kc short enough for B's rows to stay in L1).
template <typename T, int MR, int NV>
void gather_kernel(const gemm_impl::GatherTask<T>& t) {
  constexpr int NR = Tile<T, MR, NV>::NR;
  for (int64_t jr = 0; jr < t.nc; jr += NR) {
    const int nb = static_cast<int>(std::min<int64_t>(NR, t.nc - jr));
    for (int64_t ir = 0; ir < t.mc; ir += MR) {
      const int mb = static_cast<int>(std::min<int64_t>(MR, t.mc - ir));
      if (nb == NR) {
        if (mb == MR) {
          gather_tile<T, MR, NV, false, true>(t, ir, jr, mb, nb);
        } else {
          gather_tile<T, MR, NV, true, true>(t, ir, jr, mb, nb);
        }
      } else {
        gather_tile<T, MR, NV, true, false>(t, ir, jr, mb, nb);
      }
    }
  }
}

template <typename T, int MR, int NV>
gemm_impl::GatherKernel<T> make_gather_kernel(const char* name) {
  return gemm_impl::GatherKernel<T>{MR, Tile<T, MR, NV>::NR, name, &gather_kernel<T, MR, NV>};
}

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
