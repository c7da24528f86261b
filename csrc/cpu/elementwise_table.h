// The per-ISA elementwise chunk kernels (elementwise_kernels.h, compiled by
// elementwise_<isa>.cpp) as one table; elementwise.cpp resolves it once
// (cpu/dispatch.h).  Each kernel handles one chunk of elements or rows.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

// Adam's scalars for one update (see elementwise.h: adam_update).
template <typename T>
struct AdamArgs {
  T lr, beta1, beta2, eps, weight_decay, m_scale, v_scale;
  T grad_scale, param_decay, average_rate;
};

template <typename T>
struct ElementwiseKernels {
  void (*column_sum)(const T* dy, int64_t rows, int64_t channels, double* acc);
  void (*softmax)(const T* x, T* y, int64_t rows, int64_t cols, bool log);
  double (*softmax_cross_entropy)(const T* logits, const int64_t* labels, const T* targets, T* probs,
                                  int64_t rows, int64_t cols);
  void (*softmax_cross_entropy_backward)(T scale, const T* probs, const int64_t* labels, const T* targets,
                                         T* dlogits, int64_t rows, int64_t cols);
  double (*mse)(const T* prediction, const T* target, T* grad, int64_t n, T two_over_batch);
  void (*dropout)(const T* x, T* y, uint8_t* mask, int64_t n, int64_t first, uint64_t seed_mixed,
                  uint32_t threshold, T scale);
  void (*dropout_backward)(const T* dy, const uint8_t* mask, T* dx, int64_t n, T scale);
  void (*sgd)(T* param, T* grad, T* velocity, int64_t n, T lr, T momentum, T weight_decay, bool nesterov);
  void (*adam)(T* param, T* grad, T* m, T* v, int64_t n, const AdamArgs<T>& args, T* average);
};

namespace portable { template <typename T> ElementwiseKernels<T> elementwise_kernel_table(); }
namespace avx2 { template <typename T> ElementwiseKernels<T> elementwise_kernel_table(); }
namespace avx512 { template <typename T> ElementwiseKernels<T> elementwise_kernel_table(); }

}  // namespace fastnn::cpu
