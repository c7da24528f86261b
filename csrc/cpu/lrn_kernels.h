// LRN kernels, written once as loops over the contiguous channel row that the
// compiler vectorises for the ISA of the including translation unit
// (lrn_portable.cpp, _avx2.cpp, _avx512.cpp).
//
// The channel window sum reads a per-thread row padded with depth_radius zeros
// on each side (the caller's workspace): every shifted pass then covers all C
// channels with unaligned vector loads and no edge cases, 2r+1 vertical adds
// per channel vector.  Each task fills kLrnGroup such rows (8 pixels) before it
// sums any window: loading a row right after storing it, at a shifted offset,
// stalled every load that straddles two pending stores until both committed
// (store-to-load forwarding fails); grouping made the forward 1.3-2x faster.  A running sum (add the entering channel, drop the
// leaving one) needs fewer adds but is a serial chain along the vector axis,
// and it cancels badly in float32; the padded sum is exact in window order.
//
// scale^-beta: beta == 0.75 (the default) is 1/(sqrt(s) * sqrt(sqrt(s))), two
// vector square roots and a divide; for float32 with AVX2 or AVX-512 it is
// r*r*q with r = s^-1/2 and q = r^-1/2 = s^1/4, each a hardware reciprocal
// square root estimate refined by one Newton step (relative error ~3e-7,
// against 1.16-1.22x the forward's speed: square roots and divides are the
// slowest vector instructions), and the exact form for any vector holding a
// scale that is not a normal finite float.  Any other beta is
// exp(-beta * ln s), with Cephes-style float approximations (libm's scalar
// calls do not vectorise) and libm for float64.
#pragma once

#include <algorithm>
#include <cmath>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/lrn.h"
#include "cpu/lrn_table.h"
#include "cpu/vector_width.h"
#include "cpu/math_approx.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including lrn_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {
namespace lrn_math {

// exp_approx clamps its argument at the smallest normal float's exponent, so an
// infinite scale (x = inf, or squares that overflow) would give 1.2e-38 instead of
// inf^-beta = 0; select 0 there, so x * s^-beta is NaN for x = inf and 0 for a finite x,
// as in the reference.
inline float pow_neg(float s, float beta) {
  const float power = exp_approx(-beta * log_approx(s));
  return s == std::numeric_limits<float>::infinity() ? 0.0f : power;
}
inline double pow_neg(double s, double beta) { return std::pow(s, -beta); }

}  // namespace lrn_math

enum class PowKind { zero, three_quarters, general };

template <typename T>
inline PowKind pow_kind(T beta) {
  if (beta == T(0)) return PowKind::zero;
  return beta == T(0.75) ? PowKind::three_quarters : PowKind::general;
}

// sum[c] = sum_{d=0}^{2r} padded[c + d]  (padded holds the row at offset r).
// Blocks of 64 bytes of channels, as this ISA's vectors (one zmm, two ymm or four xmm;
// GCC vector types), accumulate all 2r+1 shifted rows in registers and store once.
// Summing whole rows pass after pass sent every partial sum through memory, a
// store-to-load chain per pass: 1.2-1.34x slower (A/B, seed shapes, 1 thread).  (One
// 64-byte GCC vector instead went through the stack on AVX2: cpu/vector_width.h.)
template <typename T>
inline void window_sum(const T* __restrict padded, T* __restrict sum, int64_t channels, int64_t radius) {
  typedef T Vec __attribute__((vector_size(kVectorBytes)));
  constexpr int kVecs = 64 / kVectorBytes;
  constexpr int64_t kLanes = kVectorBytes / sizeof(T);
  constexpr int64_t kBlock = kVecs * kLanes;
  int64_t c = 0;
  for (; c + kBlock <= channels; c += kBlock) {
    Vec acc[kVecs];
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) std::memcpy(&acc[v], padded + c + v * kLanes, sizeof(Vec));
    for (int64_t d = 1; d <= 2 * radius; ++d) {
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) {
        Vec next;
        std::memcpy(&next, padded + c + d + v * kLanes, sizeof next);
        acc[v] += next;
      }
    }
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) std::memcpy(sum + c + v * kLanes, &acc[v], sizeof(Vec));
  }
  for (; c < channels; ++c) {
    T acc = padded[c];
    for (int64_t d = 1; d <= 2 * radius; ++d) acc += padded[c + d];
    sum[c] = acc;
  }
}

// out[c] = in[c] / scale[c]^0.75 for c in [begin, channels), exactly rounded roots.
template <typename T>
inline void times_pow_neg_three_quarters(const T* __restrict in, const T* __restrict scale, T* __restrict out,
                                         int64_t begin, int64_t channels) {
  for (int64_t c = begin; c < channels; ++c) {
    const T root = std::sqrt(scale[c]);
    out[c] = in[c] / (root * std::sqrt(root));
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
// GCC 12 warns (wrongly) that _mm512_rsqrt14_ps uses an uninitialised __Y: it
// is built on the masked builtin with an undefined pass-through operand.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Float vectors of this ISA for the reciprocal-square-root form (see the top).
#if defined(__AVX512F__)
struct RsqrtOps {
  using V = __m512;
  static constexpr int64_t kWidth = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static V rsqrt(V a) { return _mm512_rsqrt14_ps(a); }
  // Every lane a normal finite float (the estimate's domain).
  static bool all_normal(V s) {
    return (_mm512_cmp_ps_mask(s, set1(std::numeric_limits<float>::min()), _CMP_GE_OQ) &
            _mm512_cmp_ps_mask(s, set1(std::numeric_limits<float>::max()), _CMP_LE_OQ)) == 0xFFFF;
  }
};
#else
struct RsqrtOps {
  using V = __m256;
  static constexpr int64_t kWidth = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static V rsqrt(V a) { return _mm256_rsqrt_ps(a); }
  static bool all_normal(V s) {
    const V ok = _mm256_and_ps(_mm256_cmp_ps(s, set1(std::numeric_limits<float>::min()), _CMP_GE_OQ),
                               _mm256_cmp_ps(s, set1(std::numeric_limits<float>::max()), _CMP_LE_OQ));
    return _mm256_movemask_ps(ok) == 0xFF;
  }
};
#endif

// a^-1/2: the hardware estimate and one Newton step, r * (1.5 - 0.5 * a * r * r).
inline RsqrtOps::V rsqrt_refined(RsqrtOps::V a) {
  using O = RsqrtOps;
  const O::V r = O::rsqrt(a);
  return O::mul(r, O::fnmadd(O::mul(O::set1(0.5f), a), O::mul(r, r), O::set1(1.5f)));
}

inline void times_pow_neg_three_quarters(const float* __restrict in, const float* __restrict scale,
                                         float* __restrict out, int64_t begin, int64_t channels) {
  using O = RsqrtOps;
  int64_t c = begin;
  for (; c + O::kWidth <= channels; c += O::kWidth) {
    const O::V s = O::load(scale + c);
    if (!O::all_normal(s)) {  // zero, subnormal, inf or NaN: the exact form
      times_pow_neg_three_quarters<float>(in, scale, out, c, c + O::kWidth);
      continue;
    }
    const O::V r = rsqrt_refined(s);  // s^-1/2
    const O::V q = rsqrt_refined(r);  // s^1/4
    O::store(out + c, O::mul(O::load(in + c), O::mul(O::mul(r, r), q)));
  }
  times_pow_neg_three_quarters<float>(in, scale, out, c, channels);
}
#pragma GCC diagnostic pop
#endif

// out[c] = in[c] * scale[c]^-beta, one loop per kind so each vectorises.
template <typename T>
inline void times_pow_neg(const T* __restrict in, const T* __restrict scale, T* __restrict out,
                          int64_t channels, T beta, PowKind kind) {
  switch (kind) {
    case PowKind::zero:
      for (int64_t c = 0; c < channels; ++c) out[c] = in[c];
      break;
    case PowKind::three_quarters:
      times_pow_neg_three_quarters(in, scale, out, 0, channels);
      break;
    case PowKind::general:
      for (int64_t c = 0; c < channels; ++c) out[c] = in[c] * lrn_math::pow_neg(scale[c], beta);
      break;
  }
}

// Pixels [begin, end) in groups of kLrnGroup: fill(p, row) writes pixel p's row of
// `channels` values into its padded row (zero borders of `radius` on each side, in
// this thread's workspace of kLrnGroup such rows), then finish(p, padded) consumes it,
// once every row of the group is written (see the top: store forwarding).
template <typename T, typename Fill, typename Finish>
inline void for_each_padded_group(int64_t begin, int64_t end, int64_t channels, int64_t radius,
                                  T* __restrict padded, const Fill& fill, const Finish& finish) {
  const int64_t stride = channels + 2 * radius;
  for (int64_t g = 0; g < kLrnGroup; ++g) {
    T* pad_g = padded + g * stride;
    for (int64_t i = 0; i < radius; ++i) pad_g[i] = pad_g[radius + channels + i] = T(0);
  }
  for (int64_t p0 = begin; p0 < end; p0 += kLrnGroup) {
    const int64_t group = std::min(kLrnGroup, end - p0);
    for (int64_t g = 0; g < group; ++g) fill(p0 + g, padded + g * stride + radius);
    for (int64_t g = 0; g < group; ++g) finish(p0 + g, padded + g * stride);
  }
}

template <typename T>
void lrn_forward_pixels(const T* __restrict x, T* __restrict y, T* __restrict scale, int64_t begin,
                        int64_t end, int64_t channels, int64_t radius, T bias, T alpha, T beta,
                        T* __restrict padded) {
  const PowKind kind = pow_kind(beta);
  for_each_padded_group(
      begin, end, channels, radius, padded,
      [&](int64_t p, T* row) {
        const T* x_p = x + p * channels;
        for (int64_t c = 0; c < channels; ++c) row[c] = x_p[c] * x_p[c];
      },
      [&](int64_t p, const T* pad) {
        T* s_p = scale + p * channels;
        window_sum(pad, s_p, channels, radius);
        for (int64_t c = 0; c < channels; ++c) s_p[c] = s_p[c] * alpha + bias;
        times_pow_neg(x + p * channels, s_p, y + p * channels, channels, beta, kind);
      });
}

template <typename T>
void lrn_backward_pixels(const T* __restrict dy, const T* __restrict x, const T* __restrict y,
                         const T* __restrict scale, T* __restrict dx, int64_t begin, int64_t end,
                         int64_t channels, int64_t radius, T two_alpha_beta, T beta, T* __restrict padded) {
  const PowKind kind = pow_kind(beta);
  for_each_padded_group(
      begin, end, channels, radius, padded,
      [&](int64_t p, T* row) {
        const int64_t o = p * channels;
        for (int64_t c = 0; c < channels; ++c) row[c] = dy[o + c] * y[o + c] / scale[o + c];
      },
      [&](int64_t p, T* pad) {
        const int64_t o = p * channels;
        T* row = pad + radius;  // reused for the x term once the window sum has read it
        T* dx_p = dx + o;
        window_sum(pad, dx_p, channels, radius);  // dx row holds the spread for now
        for (int64_t c = 0; c < channels; ++c) row[c] = two_alpha_beta * x[o + c] * dx_p[c];
        times_pow_neg(dy + o, scale + o, dx_p, channels, beta, kind);
        for (int64_t c = 0; c < channels; ++c) dx_p[c] -= row[c];
      });
}

template <typename T>
LrnKernels<T> lrn_kernel_table() {
  return {&lrn_forward_pixels<T>, &lrn_backward_pixels<T>};
}
template LrnKernels<float> lrn_kernel_table<float>();
template LrnKernels<double> lrn_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
