// LRN kernels, written once as loops over the contiguous channel row that the
// compiler vectorises for the ISA of the including translation unit
// (lrn_portable.cpp, _avx2.cpp, _avx512.cpp).
//
// The channel window sum reads a per-thread row padded with depth_radius zeros
// on each side (the caller's workspace): every shifted pass then covers all C
// channels with unaligned vector loads and no edge cases, 2r+1 vertical adds
// per channel vector.  A running sum (add the entering channel, drop the
// leaving one) needs fewer adds but is a serial chain along the vector axis,
// and it cancels badly in float32; the padded sum is exact in window order.
//
// scale^-beta: beta == 0.75 (the default) is 1/(sqrt(s) * sqrt(sqrt(s))), two
// vector square roots; any other beta is exp(-beta * ln s), with Cephes-style
// float approximations (libm's scalar calls do not vectorise) and libm for float64.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/math_approx.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including lrn_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {
namespace lrn_math {

inline float pow_neg(float s, float beta) { return exp_approx(-beta * log_approx(s)); }
inline double pow_neg(double s, double beta) { return std::pow(s, -beta); }

}  // namespace lrn_math

enum class PowKind { zero, three_quarters, general };

template <typename T>
inline PowKind pow_kind(T beta) {
  if (beta == T(0)) return PowKind::zero;
  return beta == T(0.75) ? PowKind::three_quarters : PowKind::general;
}

// sum[c] = sum_{d=0}^{2r} padded[c + d]  (padded holds the row at offset r).
// Blocks of 64 bytes of channels (GCC vector types, lowered to the ISA's
// registers) accumulate all 2r+1 shifted rows in registers and store once.
// Summing whole rows pass after pass sent every partial sum through memory, a
// store-to-load chain per pass: 1.2-1.34x slower (A/B, seed shapes, 1 thread).
template <typename T>
inline void window_sum(const T* __restrict padded, T* __restrict sum, int64_t channels, int64_t radius) {
  typedef T Block __attribute__((vector_size(64)));  // lowered to this ISA's vectors
  constexpr int64_t kBlock = 64 / sizeof(T);
  int64_t c = 0;
  for (; c + kBlock <= channels; c += kBlock) {
    Block acc, next;
    std::memcpy(&acc, padded + c, sizeof acc);
    for (int64_t d = 1; d <= 2 * radius; ++d) {
      std::memcpy(&next, padded + c + d, sizeof next);
      acc += next;
    }
    std::memcpy(sum + c, &acc, sizeof acc);
  }
  for (; c < channels; ++c) {
    T acc = padded[c];
    for (int64_t d = 1; d <= 2 * radius; ++d) acc += padded[c + d];
    sum[c] = acc;
  }
}

// out[c] = in[c] * scale[c]^-beta, one loop per kind so each vectorises.
template <typename T>
inline void times_pow_neg(const T* __restrict in, const T* __restrict scale, T* __restrict out,
                          int64_t channels, T beta, PowKind kind) {
  switch (kind) {
    case PowKind::zero:
      for (int64_t c = 0; c < channels; ++c) out[c] = in[c];
      break;
    case PowKind::three_quarters:
      for (int64_t c = 0; c < channels; ++c) {
        const T root = std::sqrt(scale[c]);
        out[c] = in[c] / (root * std::sqrt(root));
      }
      break;
    case PowKind::general:
      for (int64_t c = 0; c < channels; ++c) out[c] = in[c] * lrn_math::pow_neg(scale[c], beta);
      break;
  }
}

// Pixels [begin, end); `padded` is this thread's workspace of channels + 2 radius.
template <typename T>
void lrn_forward_pixels(const T* __restrict x, T* __restrict y, T* __restrict scale, int64_t begin,
                        int64_t end, int64_t channels, int64_t radius, T bias, T alpha, T beta,
                        T* __restrict padded) {
  const PowKind kind = pow_kind(beta);
  for (int64_t i = 0; i < radius; ++i) padded[i] = padded[radius + channels + i] = T(0);
  T* row = padded + radius;
  for (int64_t p = begin; p < end; ++p) {
    const T* x_p = x + p * channels;
    T* s_p = scale + p * channels;
    for (int64_t c = 0; c < channels; ++c) row[c] = x_p[c] * x_p[c];
    window_sum(padded, s_p, channels, radius);
    for (int64_t c = 0; c < channels; ++c) s_p[c] = s_p[c] * alpha + bias;
    times_pow_neg(x_p, s_p, y + p * channels, channels, beta, kind);
  }
}

template <typename T>
void lrn_backward_pixels(const T* __restrict dy, const T* __restrict x, const T* __restrict y,
                         const T* __restrict scale, T* __restrict dx, int64_t begin, int64_t end,
                         int64_t channels, int64_t radius, T two_alpha_beta, T beta, T* __restrict padded) {
  const PowKind kind = pow_kind(beta);
  for (int64_t i = 0; i < radius; ++i) padded[i] = padded[radius + channels + i] = T(0);
  T* row = padded + radius;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t o = p * channels;
    for (int64_t c = 0; c < channels; ++c) row[c] = dy[o + c] * y[o + c] / scale[o + c];
    T* dx_p = dx + o;
    window_sum(padded, dx_p, channels, radius);  // dx row holds the spread for now
    for (int64_t c = 0; c < channels; ++c) row[c] = two_alpha_beta * x[o + c] * dx_p[c];
    times_pow_neg(dy + o, scale + o, dx_p, channels, beta, kind);
    for (int64_t c = 0; c < channels; ++c) dx_p[c] -= row[c];
  }
}

template void lrn_forward_pixels<float>(const float*, float*, float*, int64_t, int64_t, int64_t, int64_t,
                                        float, float, float, float*);
template void lrn_forward_pixels<double>(const double*, double*, double*, int64_t, int64_t, int64_t,
                                         int64_t, double, double, double, double*);
template void lrn_backward_pixels<float>(const float*, const float*, const float*, const float*, float*,
                                         int64_t, int64_t, int64_t, int64_t, float, float, float*);
template void lrn_backward_pixels<double>(const double*, const double*, const double*, const double*,
                                          double*, int64_t, int64_t, int64_t, int64_t, double, double,
                                          double*);

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
