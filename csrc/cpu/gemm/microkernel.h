// GEMM register tile (the micro-kernel) and the row epilogue.
// Written once over a small SIMD trait and compiled per ISA:
// microkernel_<isa>.cpp defines FASTNN_ISA_NAMESPACE (gemm_impl::<isa>) and
// Simd<float>/Simd<double> for its vector width, then includes this file.
//
// Micro-kernel: an MR x NR tile of C (NR = NV vectors) held in MR*NV vector
// registers.  Each k step loads NV vectors of a packed B panel and broadcasts
// MR scalars of A, so a tile costs NV + MR loads per MR*NV FMAs; MR*NV must
// cover FMA latency x FMA ports (4 x 2 = 8) and MR*NV + NV + 1 must fit in the
// register file.  A is either packed (k-major MR panels) or, for row-major
// A that is read only a few times, read in place with a row stride: that
// skips a transposing copy that would cost as much as the multiply for
// skinny outputs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/activations.h"
#include "cpu/gemm/gemm_kernels.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including gemm/microkernel.h"
#endif

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

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
