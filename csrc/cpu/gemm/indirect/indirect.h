// Indirect GEMM kernel (convolution without an im2col copy; the task is
// IndirectTask in gemm_kernels.h).
// Written once over a small SIMD trait and compiled per ISA:
// microkernel_<isa>.cpp defines FASTNN_ISA_NAMESPACE (gemm_impl::<isa>) and
// Simd<float>/Simd<double> for its vector width, then includes this file.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu/gemm/microkernel.h"
#include "cpu/gemm/pack.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including gemm/indirect/indirect.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

// For each NR panel of B, every MR-row tile of C accumulates tap after tap
// (the run pointers of one tile stay in registers for a tap's kc steps),
// skipping taps that fall in the padding for all its rows, and stores once,
// with the epilogue.  B streams from L2 for each tile: taking
// the taps in L1-sized groups and revisiting C per group was measured slower
// (conv2 of the seed network, 1 thread: 3.06 ms against 3.13-3.90).  A short
// last tile repeats row 0's runs in its missing rows, so every load is valid;
// those rows are never stored.
template <typename T, int MR, int NV>
void indirect_kernel(const gemm_impl::IndirectTask<T>& t) {
  using K = Tile<T, MR, NV>;
  using V = typename K::V;
  constexpr int NR = K::NR;
  for (int64_t jr = 0; jr < t.nc; jr += NR) {
    const int nb = static_cast<int>(std::min<int64_t>(NR, t.nc - jr));
    const T* panel = t.b + (jr / NR) * t.b_panel_stride;
    const T* bias = t.ep.bias != nullptr ? t.ep.bias + jr : nullptr;
    for (int64_t ir = 0; ir < t.mc; ir += MR) {
      const int mb = static_cast<int>(std::min<int64_t>(MR, t.mc - ir));
      const T* const* tile_rows = t.rows + ir * t.taps;
      V acc[MR][NV];
      for (int i = 0; i < MR; ++i) {
        for (int v = 0; v < NV; ++v) acc[i][v] = K::S::zero();
      }
      for (int64_t tap = 0; tap < t.taps; ++tap) {
        const T* rows[MR];
        bool padding = true;  // every row's run is the zero run (an image's top or bottom rows)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) {
          rows[i] = tile_rows[(i < mb ? i : 0) * t.taps + tap];
          padding = padding && rows[i] == t.zero;
        }
        if (!padding) K::multiply_rows(t.kc, rows, panel + tap * t.b_tap_stride, NR, acc);
      }
      T* cp = t.c + ir * t.ldc + jr;
      if (mb == MR && nb == NR) {
        K::template store<true>(acc, cp, t.ldc, MR, NR, t.ep, bias);
      } else {
        K::template store<false>(acc, cp, t.ldc, mb, nb, t.ep, bias);
      }
    }
  }
}

template <typename T, int MR, int NV>
gemm_impl::IndirectKernel<T> make_indirect_kernel(const char* name) {
  constexpr int NR = Tile<T, MR, NV>::NR;
  return gemm_impl::IndirectKernel<T>{MR, NR, name, &pack_b<T, NR>, &indirect_kernel<T, MR, NV>};
}

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
