// Chunk kernels for elementwise.h, written once as plain loops and compiled per
// ISA (elementwise_portable.cpp, _avx2.cpp, _avx512.cpp) so the compiler
// vectorises each for its instruction set.  elementwise.cpp splits the work
// across threads and calls the selected ISA's chunk function.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cpu/elementwise_table.h"
#include "cpu/math_approx.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including elementwise_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

inline float exp_of(float x) { return exp_approx(x); }
inline double exp_of(double x) { return std::exp(x); }

// acc[c] += sum of rows [0, rows) of dy (rows x channels).
template <typename T>
void column_sum_chunk(const T* __restrict dy, int64_t rows, int64_t channels, double* __restrict acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = dy + r * channels;
    for (int64_t c = 0; c < channels; ++c) acc[c] += static_cast<double>(row[c]);
  }
}

// One row of the softmax family: out[c] = exp(x[c] - max(x)); returns the max
// and the sum of the exps.  One pass for the max, one for the exps and their sum.
template <typename T>
struct RowExp {
  T max, sum;
};

template <typename T>
inline RowExp<T> exp_shifted_row(const T* __restrict xr, T* __restrict out, int64_t cols) {
  T max = xr[0];
  for (int64_t c = 1; c < cols; ++c) max = xr[c] > max ? xr[c] : max;
  T sum = 0;
  for (int64_t c = 0; c < cols; ++c) {
    const T e = exp_of(xr[c] - max);
    out[c] = e;
    sum += e;
  }
  return {max, sum};
}

// Softmax of each row: the shifted exps written straight into y, then one pass
// to normalise.  Log-softmax reuses the same exps.
template <typename T>
void softmax_chunk(const T* __restrict x, T* __restrict y, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const auto [max, sum] = exp_shifted_row(xr, yr, cols);
    if (log) {
      const T offset = max + static_cast<T>(std::log(static_cast<double>(sum)));
      for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] - offset;
    } else {
      const T inv = T(1) / sum;
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  }
}

// Writes probs for each row and returns the summed (not yet averaged) loss.
template <typename T>
double softmax_cross_entropy_chunk(const T* __restrict logits, const int64_t* labels, const T* targets,
                                   T* __restrict probs, int64_t rows, int64_t cols) {
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = logits + r * cols;
    T* pr = probs + r * cols;
    const auto [max, sum] = exp_shifted_row(xr, pr, cols);
    const double log_sum = std::log(static_cast<double>(sum)) + static_cast<double>(max);
    if (labels != nullptr) {
      total += log_sum - static_cast<double>(xr[labels[r]]);
    } else {
      const T* tr = targets + r * cols;
      double row = 0.0;
      for (int64_t c = 0; c < cols; ++c) row += static_cast<double>(tr[c]) * (log_sum - static_cast<double>(xr[c]));
      total += row;
    }
    const T inv = T(1) / sum;
    for (int64_t c = 0; c < cols; ++c) pr[c] *= inv;
  }
  return total;
}

// dlogits = scale * (probs * sum(targets) - targets), scale = dloss / batch.
template <typename T>
void softmax_cross_entropy_backward_chunk(T scale, const T* __restrict probs, const int64_t* labels,
                                          const T* targets, T* __restrict dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = probs + r * cols;
    T* dr = dx + r * cols;
    if (labels != nullptr) {
      for (int64_t c = 0; c < cols; ++c) dr[c] = pr[c] * scale;
      dr[labels[r]] -= scale;
    } else {
      const T* tr = targets + r * cols;
      T mass = 0;
      for (int64_t c = 0; c < cols; ++c) mass += tr[c];
      for (int64_t c = 0; c < cols; ++c) dr[c] = (pr[c] * mass - tr[c]) * scale;
    }
  }
}

// grad = two_over_batch * diff; returns sum(diff^2).
template <typename T>
double mse_chunk(const T* __restrict prediction, const T* __restrict target, T* __restrict grad, int64_t n,
                 T two_over_batch) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const T diff = prediction[i] - target[i];
    grad[i] = diff * two_over_batch;
    total += static_cast<double>(diff) * static_cast<double>(diff);
  }
  return total;
}

inline bool dropout_keep(uint64_t seed_mixed, uint64_t index, uint32_t threshold) {
  uint64_t z = seed_mixed + index;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 40) < threshold;
}

template <typename T>
void dropout_chunk(const T* __restrict x, T* __restrict y, uint8_t* __restrict mask, int64_t n, int64_t first,
                   uint64_t seed_mixed, uint32_t threshold, T scale) {
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_keep(seed_mixed, static_cast<uint64_t>(first + i), threshold);
    mask[i] = keep;
    y[i] = x[i] * (keep ? scale : T(0));  // a dropped NaN or inf stays NaN (IEEE: x * 0)
  }
}

template <typename T>
void dropout_backward_chunk(const T* __restrict dy, const uint8_t* __restrict mask, T* __restrict dx, int64_t n,
                            T scale) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (mask[i] ? scale : T(0));
}

// The L2 term weight_decay * param is left out entirely when weight_decay is 0 (not
// multiplied by zero), so an infinite parameter without decay stays infinite.
template <bool Decay, typename T>
inline T decayed(T grad, T param, T weight_decay) {
  if constexpr (Decay) return grad + weight_decay * param;
  return grad;
}

template <bool Decay, typename T>
void sgd_loop(T* __restrict param, T* __restrict grad, T* __restrict velocity, int64_t n, T lr, T momentum,
              T weight_decay, bool nesterov) {
  if (velocity == nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      param[i] -= lr * decayed<Decay>(grad[i], param[i], weight_decay);
      grad[i] = 0;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const T g = decayed<Decay>(grad[i], param[i], weight_decay);
    const T vel = momentum * velocity[i] + g;
    velocity[i] = vel;
    param[i] -= lr * (nesterov ? g + momentum * vel : vel);
    grad[i] = 0;
  }
}

template <typename T>
void sgd_chunk(T* __restrict param, T* __restrict grad, T* __restrict velocity, int64_t n, T lr, T momentum,
               T weight_decay, bool nesterov) {
  if (weight_decay != T(0)) {
    sgd_loop<true>(param, grad, velocity, n, lr, momentum, weight_decay, nesterov);
  } else {
    sgd_loop<false>(param, grad, velocity, n, lr, momentum, weight_decay, nesterov);
  }
}

// One Adam step per element.  The optional parts are template flags, so the common
// step compiles to the plain loop: Scale multiplies the gradient first (a clip-by-norm
// factor), Decay adds L2 weight decay to it, Shrink takes param_decay * param off the
// stepped parameter (decoupled weight decay, as Thinc and AdamW apply it) and Average
// moves an exponential moving average of the parameter towards its new value.
template <bool Scale, bool Decay, bool Shrink, bool Average, typename T>
void adam_loop(T* __restrict param, T* __restrict grad, T* __restrict m, T* __restrict v, int64_t n,
               const AdamArgs<T>& a, T* __restrict average) {
  const T lr = a.lr, beta1 = a.beta1, beta2 = a.beta2, eps = a.eps;
  const T m_scale = a.m_scale, v_scale = a.v_scale;
  const T one_minus_beta1 = T(1) - beta1;
  const T one_minus_beta2 = T(1) - beta2;
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    if constexpr (Scale) g = g * a.grad_scale;
    g = decayed<Decay>(g, param[i], a.weight_decay);
    const T mi = beta1 * m[i] + one_minus_beta1 * g;
    const T vi = beta2 * v[i] + one_minus_beta2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    T p = param[i] - lr * (mi * m_scale) / (std::sqrt(vi * v_scale) + eps);
    if constexpr (Shrink) p = p - p * a.param_decay;
    param[i] = p;
    if constexpr (Average) average[i] = average[i] - a.average_rate * (average[i] - p);
    grad[i] = 0;
  }
}

template <typename F>
inline void with_flag(bool on, F&& f) {
  if (on) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

template <typename T>
void adam_chunk(T* __restrict param, T* __restrict grad, T* __restrict m, T* __restrict v, int64_t n,
                const AdamArgs<T>& a, T* __restrict average) {
  with_flag(a.grad_scale != T(1), [&](auto scale) {
    with_flag(a.weight_decay != T(0), [&](auto decay) {
      with_flag(a.param_decay != T(0), [&](auto shrink) {
        with_flag(average != nullptr, [&](auto avg) {
          adam_loop<decltype(scale)::value, decltype(decay)::value, decltype(shrink)::value,
                    decltype(avg)::value>(param, grad, m, v, n, a, average);
        });
      });
    });
  });
}

template <typename T>
ElementwiseKernels<T> elementwise_kernel_table() {
  return {&column_sum_chunk<T>, &softmax_chunk<T>, &softmax_cross_entropy_chunk<T>,
          &softmax_cross_entropy_backward_chunk<T>, &mse_chunk<T>, &dropout_chunk<T>,
          &dropout_backward_chunk<T>, &sgd_chunk<T>, &adam_chunk<T>};
}
template ElementwiseKernels<float> elementwise_kernel_table<float>();
template ElementwiseKernels<double> elementwise_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
