// Packing routines, register-blocked micro-kernel and macro-kernel, written
// once over a small SIMD trait and compiled per ISA: microkernel_<isa>.cpp
// defines FASTNN_ISA_NAMESPACE (gemm::<isa>) and Simd<float>/Simd<double>
// for its vector width, then includes this file.
//
// Micro-kernel: an MR x NR tile of C (NR = NV vectors) held in MR*NV vector
// registers.  Each k step loads NV vectors of a packed B panel and broadcasts
// MR scalars of A, so a tile costs NV + MR loads per MR*NV FMAs; MR*NV must
// cover FMA latency x FMA ports (4 x 2 = 8) and MR*NV + NV + 1 must fit in the
// register file.  A is either packed (k-major MR panels) or, for row-major
// A that is read only a few times, read in place with a row stride: that
// skips a transposing copy that would cost as much as the multiply for
// skinny outputs.
//
// Macro-kernel: a packed A block meets the B block micro-panel by
// micro-panel, each A micro-panel (kc x MR, L1) against every B micro-panel
// (kc x NR, streaming from L2); an A read in place is walked the other way
// round, each B micro-panel against every row tile of the block.
// Edge tiles compute the full register tile and store through a small
// buffer, so the inner loop has no edge cases.
#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including microkernel_impl.h"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/activations.h"
#include "cpu/gemm/gemm_kernels.h"

#define FASTNN_GEMM_INLINE inline __attribute__((always_inline))
#define FASTNN_GEMM_INLINE_LAMBDA __attribute__((always_inline))

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

template <typename T>
FASTNN_GEMM_INLINE void activate_row(Activation act, T* y, int n) {
  // Only sigmoid and tanh come here; relu is applied in registers.
  if (act == Activation::sigmoid) {
    for (int j = 0; j < n; ++j) y[j] = sigmoid_scalar(y[j]);
  } else if (act == Activation::tanh) {
    for (int j = 0; j < n; ++j) y[j] = tanh_scalar(y[j]);
  }
}

template <typename T, int MR, int NV>
struct Tile {
  using S = Simd<T>;
  using V = typename S::V;
  static constexpr int W = S::kWidth;
  static constexpr int NR = NV * W;

  // acc += A(MR x kc) * B(kc x NR).  kRowsA: A row-major in place,
  // a[i*stride + p]; otherwise k-major, a[p*stride + i] (a packed panel with
  // stride MR, or a transposed A in place with stride lda).
  // B: k-major with b_stride per k step (NR for a packed panel, ldb in place).
  template <bool kRowsA>
  static FASTNN_GEMM_INLINE void multiply(int64_t kc, const T* __restrict a, int64_t stride,
                                          const T* __restrict b, int64_t b_stride, V (&acc)[MR][NV]) {
    if constexpr (kRowsA) {
      multiply_strided(kc, a, stride, b, b_stride, acc);
      return;
    }
    auto step = [&](int64_t p) FASTNN_GEMM_INLINE_LAMBDA {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = S::load(b + p * b_stride + v * W);
      const T* ap = a + p * stride;
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const V ai = S::set1(ap[i]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
      }
    };
    if (stride == MR) {
      // A packed panel, unrolled: +1.5-2.5% on square products (A/B).  A
      // transposed A read in place (a long stride) ran 2-10% slower unrolled.
#pragma GCC unroll 4
      for (int64_t p = 0; p < kc; ++p) step(p);
    } else {
      for (int64_t p = 0; p < kc; ++p) step(p);
    }
  }

  // acc += A(MR x kc) * B(kc x NR) with A row-major in place, row i at
  // a + i*stride.  Rows are addressed in groups of five from one base each
  // (base + {0, 1, 2, 3, 4} * stride is base, base + L, base + 2L, base + L3,
  // base + 4L in x86 addressing), so a 14-row tile needs 3 bases and 2 strides
  // instead of 14 row pointers, which spilled to vector registers.
  static FASTNN_GEMM_INLINE void multiply_strided(int64_t kc, const T* a, int64_t stride, const T* __restrict b,
                                                  int64_t b_stride, V (&acc)[MR][NV]) {
    constexpr int G = (MR + 4) / 5;
    const int64_t L = stride * int64_t(sizeof(T)), L3 = 3 * L;
    const char* base[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) base[g] = reinterpret_cast<const char*>(a) + 5 * g * L;
    // Unrolled: +1.5-2.5% at n = 256, +12% on the seed's 64x3136x128 (A/B).
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = S::load(b + p * b_stride + v * W);
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const char* q = base[i / 5];
        const int r = i % 5;
        const char* e = r == 0 ? q : r == 1 ? q + L : r == 2 ? q + 2 * L : r == 3 ? q + L3 : q + 4 * L;
        const V ai = S::set1(*reinterpret_cast<const T*>(e));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
      }
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) base[g] += sizeof(T);
    }
  }

  // acc += A(MR x kc) * B(kc x NR) with A row i at rows[i] (anywhere in memory).
  static FASTNN_GEMM_INLINE void multiply_rows(int64_t kc, const T* const (&rows)[MR], const T* __restrict b,
                                               int64_t b_stride, V (&acc)[MR][NV]) {
    for (int64_t p = 0; p < kc; ++p) {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = S::load(b + p * b_stride + v * W);
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const V ai = S::set1(rows[i][p]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = S::fmadd(ai, bv[v], acc[i][v]);
      }
    }
  }

  // C = epilogue(acc) straight to memory.  kFull: the whole MR x NR tile;
  // otherwise the first m rows and n columns, through masked loads/stores.
  template <bool kFull>
  // skip: the first rows of the tile are not stored (a tail tile that
  // overlaps the tile before it).
  static FASTNN_GEMM_INLINE void store(V (&acc)[MR][NV], T* c, int64_t ldc, int m, int n,
                                       const gemm_impl::Epilogue<T>& ep, const T* bias, int skip = 0) {
    const V alpha = S::set1(ep.alpha);
    const V beta = S::set1(ep.beta);
    const bool read_c = !ep.first || ep.beta != T(0);
    const bool add_bias = ep.last && bias != nullptr;
    const bool relu = ep.last && ep.act == Activation::relu;
    int lanes[NV];
    for (int v = 0; v < NV; ++v) lanes[v] = kFull ? W : std::max(0, std::min(W, n - v * W));
    auto load = [&](const T* p, int v) { return kFull ? S::load(p) : S::load_partial(p, lanes[v]); };
    V bias_v[NV] = {};
    if (add_bias) {
      for (int v = 0; v < NV; ++v) bias_v[v] = load(bias + v * W, v);
    }
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      if (!kFull && i >= m) break;
      if (!kFull && i < skip) continue;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        T* cp = c + i * ldc + v * W;
        V r = S::mul(acc[i][v], alpha);
        if (read_c) r = ep.first ? S::fmadd(beta, load(cp, v), r) : S::add(r, load(cp, v));
        if (add_bias) r = S::add(r, bias_v[v]);
        if (relu) r = S::relu(r);
        if (kFull) {
          S::store(cp, r);
        } else {
          S::store_partial(cp, r, lanes[v]);
        }
      }
    }
    if (ep.last && (ep.act == Activation::sigmoid || ep.act == Activation::tanh)) {
      for (int i = kFull ? 0 : skip; i < (kFull ? MR : m); ++i) activate_row(ep.act, c + i * ldc, kFull ? NR : n);
    }
  }
};

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

// ---------------------------------------------------------------- packing

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

// ------------------------------------------------------------ macro-kernel

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

// ---------------------------------------------------------- indirect GEMM

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
gemm_impl::IndirectKernel<T> make_indirect_kernel(const char* name) {
  constexpr int NR = Tile<T, MR, NV>::NR;
  return gemm_impl::IndirectKernel<T>{MR, NR, name, &pack_b<T, NR>, &indirect_kernel<T, MR, NV>};
}

template <typename T, int MR, int NV>
gemm_impl::GatherKernel<T> make_gather_kernel(const char* name) {
  return gemm_impl::GatherKernel<T>{MR, Tile<T, MR, NV>::NR, name, &gather_kernel<T, MR, NV>};
}

template <typename T, int MR, int NV>
gemm_impl::KernelSet<T> make_kernel_set(const char* name) {
  constexpr int NR = Tile<T, MR, NV>::NR;
  return gemm_impl::KernelSet<T>{MR, NR, Tile<T, MR, NV>::W, name, &pack_a<T, MR>, &pack_b<T, NR>, &macro_kernel<T, MR, NV>};
}

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
