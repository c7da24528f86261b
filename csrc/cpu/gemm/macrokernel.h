// GEMM macro-kernel: one A block against a range of B panels, tile by tile.
// Written once over a small SIMD trait and compiled per ISA:
// microkernel_<isa>.cpp defines FASTNN_ISA_NAMESPACE (gemm_impl::<isa>) and
// Simd<float>/Simd<double> for its vector width, then includes this file.
//
// Macro-kernel: a packed A block meets the B block micro-panel by
// micro-panel, each A micro-panel (kc x MR, L1) against every B micro-panel
// (kc x NR, streaming from L2); an A read in place is walked the other way
// round, each B micro-panel against every row tile of the block.
// Edge tiles compute the full register tile and store through a small
// buffer, so the inner loop has no edge cases.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/gemm/microkernel.h"
#include "cpu/gemm/pack.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including gemm/macrokernel.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

template <typename T, int MR, int NV>
void macro_kernel(const gemm_impl::MacroTask<T>& t) {
  using K = Tile<T, MR, NV>;
  using V = typename K::V;
  constexpr int NR = K::NR;
  const bool packed = t.lda == 0;
  const int64_t full_rows = packed ? t.mc : (t.mc / MR) * MR;
  // The row tail of an in-place A: a full tile ending at the last row,
  // storing only its new rows; packed only when the block is shorter than a tile.
  const bool overlap_tail = !packed && full_rows < t.mc && t.mc >= MR;
  if (full_rows < t.mc && !overlap_tail) {
    const T* tail = t.trans_a ? t.a + full_rows : t.a + full_rows * t.lda;
    pack_a<T, MR>(t.mc - full_rows, t.kc, tail, t.lda, t.trans_a, t.scratch);  // one panel
  }
  // In-place B: the last partial column panel is packed, for the same reason.
  const bool b_packed = t.ldb == 0;
  const int64_t full_cols = b_packed ? t.nc : (t.nc / NR) * NR;
  if (full_cols < t.nc) {
    pack_b<T, NR>(t.kc, t.nc - full_cols, t.b + full_cols, t.ldb, false, t.b_scratch);
  }
  auto tile = [&](int64_t jr, int64_t ir0) FASTNN_GEMM_INLINE_LAMBDA {
    const int nb = static_cast<int>(std::min<int64_t>(NR, t.nc - jr));
    const T* bp = b_packed ? t.b + (jr / NR) * t.b_stride : jr < full_cols ? t.b + jr : t.b_scratch;
    const int64_t b_step = b_packed || jr >= full_cols ? NR : t.ldb;
    const T* bias = t.ep.bias != nullptr ? t.ep.bias + jr : nullptr;
    int64_t ir = ir0;
    int mb = static_cast<int>(std::min<int64_t>(MR, t.mc - ir));
    int skip = 0;
    if (overlap_tail && ir >= full_rows) {
      skip = MR - mb;
      ir -= skip;
      mb = MR;
    }
    T* cp = t.c + ir * t.ldc + jr;
    V acc[MR][NV];
    for (int i = 0; i < MR; ++i) {
      for (int v = 0; v < NV; ++v) acc[i][v] = K::S::zero();
    }
    if (packed) {
      K::template multiply<false>(t.kc, t.a + (ir / MR) * t.kc * MR, MR, bp, b_step, acc);
    } else if (ir >= full_rows && !overlap_tail) {
      K::template multiply<false>(t.kc, t.scratch, MR, bp, b_step, acc);
    } else if (t.trans_a) {
      K::template multiply<false>(t.kc, t.a + ir, t.lda, bp, b_step, acc);
    } else {
      K::template multiply<true>(t.kc, t.a + ir * t.lda, t.lda, bp, b_step, acc);
    }
    if (mb == MR && nb == NR && skip == 0) {
      K::template store<true>(acc, cp, t.ldc, MR, NR, t.ep, bias);
    } else {
      K::template store<false>(acc, cp, t.ldc, mb, nb, t.ep, bias, skip);
    }
  };
  if (packed) {
    // Each A micro-panel (L1) meets every B micro-panel of the block (L2).
    for (int64_t ir = 0; ir < t.mc; ir += MR) {
      for (int64_t jr = 0; jr < t.nc; jr += NR) tile(jr, ir);
    }
    return;
  }
  // In place, A's rows are the expensive reads: each B micro-panel meets
  // every row tile of the block (A's rows stay in L2).
  for (int64_t jr = 0; jr < t.nc; jr += NR) {
    for (int64_t ir = 0; ir < t.mc; ir += MR) tile(jr, ir);
  }
}

template <typename T, int MR, int NV>
gemm_impl::KernelSet<T> make_kernel_set(const char* name) {
  constexpr int NR = Tile<T, MR, NV>::NR;
  return gemm_impl::KernelSet<T>{MR, NR, Tile<T, MR, NV>::W, name, &pack_a<T, MR>, &pack_b<T, NR>, &macro_kernel<T, MR, NV>};
}

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
