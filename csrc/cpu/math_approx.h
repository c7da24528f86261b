// Vectorisable float approximations of exp, sigmoid and tanh.
//
// Cephes-style: range reduction plus a short polynomial, about 2 ulp, written
// as branch-free scalar code so the compiler vectorises the calling loop for
// the ISA of the including translation unit (libm's scalar calls would block
// vectorisation).  float64 keeps libm for accuracy.  NaN passes through: clamps
// are written as `x < lo ? lo : x`, which leaves NaN untouched, and the
// polynomial then carries it.
//
// Include after defining FASTNN_ISA_NAMESPACE; the functions land in
// fastnn::cpu::FASTNN_ISA_NAMESPACE, so each ISA's copy is distinct.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including math_approx.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

inline float exp_approx(float x) {
  x = x > 88.3762626647949f ? 88.3762626647949f : x;
  x = x < -87.3365447504f ? -87.3365447504f : x;
  // n = round(x / ln 2) with the 1.5 * 2^23 trick (no float->int rounding call).
  const float shifter = 12582912.0f;
  float n = x * 1.44269504088896341f + shifter;
  n -= shifter;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // NaN x leaves n NaN; converting NaN to int is undefined, so use 0 (p is NaN anyway).
  const int32_t bits = (static_cast<int32_t>(n == n ? n : 0.0f) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// ln x for x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m by Cephes'
// logf polynomial (about 1 ulp).  Subnormals are rescaled; inf and NaN pass.
inline float log_approx(float x) {
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

inline float sigmoid_scalar(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline double sigmoid_scalar(double x) { return 1.0 / (1.0 + std::exp(-x)); }

inline float tanh_scalar(float x) {
  // |x| < 0.625: odd polynomial (no cancellation near 0); otherwise
  // 1 - 2 / (exp(2|x|) + 1) with the sign restored.  |x| is clamped at 10, where
  // the quotient (4e-9) already rounds 1 - it to 1 (from |x| = 9.02 on): beyond
  // about 44 exp's own clamp left 2 / exp a subnormal, and every such element
  // cost a microcode assist (a 64 x 128 array of N(0, 30^2) inputs: 30 us
  // against 6 at small |x|).
  const float ax = std::fabs(x);
  const float z = x * x;
  float small = -5.70498872745e-3f;
  small = small * z + 2.06390887954e-2f;
  small = small * z - 5.37397155531e-2f;
  small = small * z + 1.33314422036e-1f;
  small = small * z - 3.33332819422e-1f;
  small = small * z * x + x;
  const float clamped = ax > 10.0f ? 10.0f : ax;  // NaN stays NaN
  float large = 1.0f - 2.0f / (exp_approx(2.0f * clamped) + 1.0f);
  large = std::copysign(large, x);
  return ax < 0.625f ? small : large;
}
inline double tanh_scalar(double x) { return std::tanh(x); }

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
