// Activation kernels, written once as branch-free scalar loops that the
// compiler vectorises for whatever ISA the including translation unit is
// built for (activations_portable.cpp, _avx2.cpp, _avx512.cpp).  The float
// exp/sigmoid/tanh approximations live in math_approx.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/activations.h"
#include "cpu/activations_table.h"
#include "cpu/math_approx.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including activations_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

template <typename T>
void activation_forward(Activation act, const T* __restrict x, T* __restrict y, int64_t n) {
  switch (act) {
    case Activation::relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
      break;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(x[i]);
      break;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = tanh_scalar(x[i]);
      break;
    case Activation::none:
      if (x != y) std::memcpy(y, x, sizeof(T) * static_cast<size_t>(n));
      break;
  }
}

template <typename T>
void activation_backward(Activation act, const T* __restrict dy, const T* __restrict y, T* __restrict dx,
                         int64_t n) {
  switch (act) {
    case Activation::relu:
      // dy * (y > 0) in IEEE arithmetic: an inactive unit passes dy * 0, which is NaN for a
      // NaN or infinite dy (the contract in fastnn/ops.py), not a plain 0.
      for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : dy[i] * T(0);
      break;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      break;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
      break;
    case Activation::none:
      if (dy != dx) std::memcpy(dx, dy, sizeof(T) * static_cast<size_t>(n));
      break;
  }
}

template <typename T>
ActivationKernels<T> activation_kernel_table() {
  return {&activation_forward<T>, &activation_backward<T>};
}
template ActivationKernels<float> activation_kernel_table<float>();
template ActivationKernels<double> activation_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
