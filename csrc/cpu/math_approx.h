// Vectorisable float approximations of exp, sigmoid and tanh.
//
// exp and log Cephes-style: range reduction plus a short polynomial, about 2 ulp;
// tanh a rational function (see there).  All written
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

// tanh as x P(x^2) / Q(x^2), P of degree 6 and Q of degree 3 in x^2: 9 FMAs, a multiply
// and a division, no exp.  The coefficients are a minimax fit in relative error on
// [0, 9.010914], rounded to float one by one with the rest refitted (scripts/fit_tanh.py;
// the fit's own error is 0.34 ulp, the rest is the float evaluation's).  Over every float
// input: within 5 ulp of the correctly rounded tanh with FMA (AVX2, AVX-512), 6 without
// (mean 0.07), never outside [-1, 1], odd, and exactly +-1 from |x| = 9.010914, the
// smallest float whose tanh rounds to 1 (tests/test_tanh_accuracy.py).  The exp form it
// replaced, 1 - 2 / (exp(2|x|) + 1) beside an odd polynomial near 0, was within 1 ulp
// at twice the time (AVX-512, one core: 0.72 against 0.32 ns an element).
inline float tanh_scalar(float x) {
  // From kSaturate on the select below returns +-1, so the quotient needs no clamped input
  // there (inf / inf is NaN in those lanes, then replaced); NaN stays NaN throughout.
  constexpr float kSaturate = 9.010914f;
  const float z = x * x;
  float p = -8.532517276e-14f;
  p = p * z + 5.298193481e-11f;
  p = p * z - 2.027419121e-08f;
  p = p * z + 1.116792464e-05f;
  p = p * z + 3.105358453e-03f;
  p = p * z + 1.308529824e-01f;
  p = p * z + 1.0f;
  float q = 2.548125340e-04f;
  q = q * z + 2.450086549e-02f;
  q = q * z + 4.641862512e-01f;
  q = q * z + 1.0f;
  float y = x * p / q;
  y = y > 1.0f ? 1.0f : (y < -1.0f ? -1.0f : y);
  return std::fabs(x) >= kSaturate ? std::copysign(1.0f, x) : y;
}
inline double tanh_scalar(double x) { return std::tanh(x); }

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
