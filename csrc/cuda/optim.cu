// In-place SGD (momentum, Nesterov, weight decay) and Adam updates, one thread per
// element, in the reference's order of operations (fastnn/backends/reference/optim.py);
// both leave grad zeroed. Scalars are rounded to T on the host side of the kernel, as the
// reference rounds them to the parameter's dtype; Adam's bias corrections come in as the
// precomputed 1 / (1 - beta^step).
#include "common.cuh"

namespace fastnn::cuda {
namespace {

template <typename T>
__global__ void sgd_kernel(T* __restrict__ param, T* __restrict__ grad, T* __restrict__ velocity,
                           int64_t size, T lr, T momentum, T weight_decay, bool nesterov) {
  FASTNN_GRID_STRIDE(i, size) {
    T g = grad[i];
    if (weight_decay != T(0)) g += weight_decay * param[i];
    T step = g;
    if (velocity != nullptr) {
      const T v = velocity[i] * momentum + g;
      velocity[i] = v;
      step = nesterov ? g + momentum * v : v;
    }
    param[i] -= lr * step;
    grad[i] = T(0);
  }
}

template <typename T>
__global__ void adam_kernel(T* __restrict__ param, T* __restrict__ grad, T* __restrict__ m,
                            T* __restrict__ v, int64_t size, T lr, T beta1, T one_minus_beta1,
                            T beta2, T one_minus_beta2, T eps, T weight_decay, T m_scale,
                            T v_scale) {
  FASTNN_GRID_STRIDE(i, size) {
    T g = grad[i];
    if (weight_decay != T(0)) g += weight_decay * param[i];
    const T m_new = m[i] * beta1 + one_minus_beta1 * g;
    const T v_new = v[i] * beta2 + one_minus_beta2 * (g * g);
    m[i] = m_new;
    v[i] = v_new;
    param[i] -= lr * (m_new * m_scale) / (sqrt(v_new * v_scale) + eps);
    grad[i] = T(0);
  }
}

}  // namespace

template <typename T>
cudaError_t sgd_update(T* param, T* grad, T* velocity, int64_t size, double lr,
                       double momentum, double weight_decay, bool nesterov,
                       cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  sgd_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(
      param, grad, momentum != 0.0 ? velocity : nullptr, size, T(lr), T(momentum),
      T(weight_decay), nesterov);
  return cudaGetLastError();
}

template <typename T>
cudaError_t adam_update(T* param, T* grad, T* m, T* v, int64_t size, double lr, double beta1,
                        double beta2, double eps, double weight_decay, double m_scale,
                        double v_scale, cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  adam_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(
      param, grad, m, v, size, T(lr), T(beta1), T(1.0 - beta1), T(beta2), T(1.0 - beta2), T(eps),
      T(weight_decay), T(m_scale), T(v_scale));
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                        \
  template cudaError_t sgd_update<T>(T*, T*, T*, int64_t, double, double, double, bool,         \
                                     cudaStream_t);                                             \
  template cudaError_t adam_update<T>(T*, T*, T*, T*, int64_t, double, double, double, double, \
                                      double, double, double, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
