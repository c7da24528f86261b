// Pointwise activations and their gradients from the forward's output.
//
// One grid-stride kernel per direction; the activation is a runtime switch rather than a
// template parameter, which keeps the instantiations (and the build) small at no
// measurable cost for these memory-bound loops.
#include "common.cuh"

namespace fastnn::cuda {
namespace {

template <typename T>
__global__ void activation_forward_kernel(int activation, const T* __restrict__ x,
                                          T* __restrict__ y, int64_t size) {
  FASTNN_GRID_STRIDE(i, size) { y[i] = activate(x[i], activation); }
}

// relu: dy * (y > 0) as a multiply, so inf * 0 gives NaN exactly as the reference does.
template <typename T>
__global__ void activation_backward_kernel(int activation, const T* __restrict__ dy,
                                           const T* __restrict__ y, T* __restrict__ dx,
                                           int64_t size) {
  FASTNN_GRID_STRIDE(i, size) {
    T g = dy[i], out = y[i];
    switch (activation) {
      case kRelu: dx[i] = g * (out > T(0) ? T(1) : T(0)); break;
      case kSigmoid: dx[i] = (g * out) * (T(1) - out); break;
      case kTanh: dx[i] = g * (T(1) - out * out); break;
      default: dx[i] = g;
    }
  }
}

}  // namespace

template <typename T>
cudaError_t activation_forward(int activation, const T* x, T* y, int64_t size,
                               cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  activation_forward_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(activation, x, y, size);
  return cudaGetLastError();
}

template <typename T>
cudaError_t activation_backward(int activation, const T* dy, const T* y, T* dx, int64_t size,
                                cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  activation_backward_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(activation, dy, y, dx,
                                                                       size);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                 \
  template cudaError_t activation_forward<T>(int, const T*, T*, int64_t, cudaStream_t); \
  template cudaError_t activation_backward<T>(int, const T*, const T*, T*, int64_t,     \
                                              cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
