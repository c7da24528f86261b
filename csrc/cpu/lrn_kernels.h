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

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including lrn_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {
namespace lrn_math {

// ln x for x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m by Cephes'
// logf polynomial (about 1 ulp).  Subnormals are rescaled; inf and NaN pass.
inline float ln(float x) {
  const bool tiny = x < std::numeric_limits<float>::min();
  const float xs = tiny ? x * 8388608.0f : x;  // 2^23
  int32_t bits;
  std::memcpy(&bits, &xs, sizeof bits);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  const int32_t mantissa_bits = (bits & 0x007fffff) | 0x3f800000;
  float m;
  std::memcpy(&m, &mantissa_bits, sizeof m);
  const bool high = m > 1.41421356237f;
  m = high ? m * 0.5f : m;
  e = high ? e + 1 : e;
  const float f = m - 1.0f, z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  p = p * f * z;
  const float fe = static_cast<float>(e) - (tiny ? 23.0f : 0.0f);
  p += fe * -2.12194440e-4f;
  p -= 0.5f * z;
  float result = f + p + fe * 0.693359375f;
  result = x == std::numeric_limits<float>::infinity() ? x : result;
  return x != x ? x : result;
}

// e^t, Cephes' expf polynomial after t = n ln2 + r; saturates to 0 and inf.
inline float exp(float t) {
  const float tc = t > 88.0f ? 88.0f : (t < -87.0f ? -87.0f : t);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: rounds to an integer in the add
  float n = tc * 1.44269504088896341f + shifter;
  n -= shifter;
  float r = tc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  float result = p * two_n;
  result = t > 88.7f ? std::numeric_limits<float>::infinity() : result;
  result = t < -87.3f ? 0.0f : result;
  return t != t ? t : result;
}

inline float pow_neg(float s, float beta) { return lrn_math::exp(-beta * lrn_math::ln(s)); }
inline double pow_neg(double s, double beta) { return std::pow(s, -beta); }

}  // namespace lrn_math

enum class PowKind { zero, three_quarters, general };

template <typename T>
inline PowKind pow_kind(T beta) {
  if (beta == T(0)) return PowKind::zero;
  return beta == T(0.75) ? PowKind::three_quarters : PowKind::general;
}

// sum[c] = sum_{d=0}^{2r} padded[c + d]  (padded holds the row at offset r).
template <typename T>
inline void window_sum(const T* __restrict padded, T* __restrict sum, int64_t channels, int64_t radius) {
  for (int64_t c = 0; c < channels; ++c) sum[c] = padded[c];
  for (int64_t d = 1; d <= 2 * radius; ++d) {
    const T* shifted = padded + d;
    for (int64_t c = 0; c < channels; ++c) sum[c] += shifted[c];
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
