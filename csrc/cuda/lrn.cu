// Local response normalisation across channels (TensorFlow semantics), forward and
// backward, for NHWC (channels adjacent) or NCHW (channels h*w apart).
//
//   scale[c] = bias + alpha * sum(x[c']^2, |c' - c| <= r),  y = x * scale^-beta
//   dx[c] = dy[c] * scale[c]^-beta - 2 alpha beta x[c] * sum(dy[j] y[j] / scale[j], |j - c| <= r)
// One thread per element sums its own window directly: the radius is small (5 in the
// seed), the neighbours are read by the adjacent threads too, so they come from L1/L2,
// and a direct sum loses nothing to the cancellation a running difference would.
#include "common.cuh"

namespace fastnn::cuda {
namespace {

template <typename T>
__global__ void lrn_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                   T* __restrict__ scale, const LrnShape s) {
  const T alpha = T(s.alpha), bias = T(s.bias), minus_beta = T(-s.beta);
  FASTNN_GRID_STRIDE(e, s.size) {
    const int c = static_cast<int>((e / s.inner) % s.channels);
    const int64_t base = e - c * s.inner;
    const int lo = max(c - s.depth_radius, 0), hi = min(c + s.depth_radius, s.channels - 1);
    T total = T(0);
    for (int j = lo; j <= hi; ++j) {
      const T v = x[base + j * s.inner];
      total += v * v;
    }
    const T sc = total * alpha + bias;
    scale[e] = sc;
    y[e] = x[e] * pow(sc, minus_beta);
  }
}

template <typename T>
__global__ void lrn_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                    const T* __restrict__ y, const T* __restrict__ scale,
                                    T* __restrict__ dx, const LrnShape s) {
  const T two_alpha_beta = T(2.0 * s.alpha * s.beta), minus_beta = T(-s.beta);
  FASTNN_GRID_STRIDE(e, s.size) {
    const int c = static_cast<int>((e / s.inner) % s.channels);
    const int64_t base = e - c * s.inner;
    const int lo = max(c - s.depth_radius, 0), hi = min(c + s.depth_radius, s.channels - 1);
    T spread = T(0);
    for (int j = lo; j <= hi; ++j) {
      const int64_t k = base + j * s.inner;
      spread += dy[k] * y[k] / scale[k];
    }
    dx[e] = dy[e] * pow(scale[e], minus_beta) - two_alpha_beta * x[e] * spread;
  }
}

}  // namespace

template <typename T>
cudaError_t lrn_forward(const T* x, T* y, T* scale, const LrnShape& s, cudaStream_t stream) {
  if (s.size == 0) return cudaSuccess;
  lrn_forward_kernel<T><<<grid_for(s.size), kBlock, 0, stream>>>(x, y, scale, s);
  return cudaGetLastError();
}

template <typename T>
cudaError_t lrn_backward(const T* dy, const T* x, const T* y, const T* scale, T* dx,
                         const LrnShape& s, cudaStream_t stream) {
  if (s.size == 0) return cudaSuccess;
  lrn_backward_kernel<T><<<grid_for(s.size), kBlock, 0, stream>>>(dy, x, y, scale, dx, s);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                      \
  template cudaError_t lrn_forward<T>(const T*, T*, T*, const LrnShape&, cudaStream_t);       \
  template cudaError_t lrn_backward<T>(const T*, const T*, const T*, const T*, T*,            \
                                       const LrnShape&, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
