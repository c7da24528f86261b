// Inverted dropout with the counter-based mask of fastnn/backends/reference/dropout.py:
// element i is kept when the top 24 bits of SplitMix64's finaliser of seed * golden + i
// (all in wrapping uint64 arithmetic) fall below round(keep_prob * 2^24), which Python
// computes once and passes as `threshold`. The mask is a pure function of (seed, i), so
// it matches the reference and every other backend bit for bit.
// y = (x * kept) * scale with scale = 1 / keep_prob rounded to T, the reference's order,
// so y is bit-identical too (and inf * 0 gives NaN, as there).
#include "common.cuh"

namespace fastnn::cuda {
namespace {

__device__ __forceinline__ bool keep(uint64_t seed, int64_t i, uint32_t threshold) {
  uint64_t z = static_cast<uint64_t>(i) + seed * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 40) < threshold;
}

template <typename T>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y,
                               bool* __restrict__ mask, int64_t size, uint64_t seed,
                               uint32_t threshold, T scale) {
  FASTNN_GRID_STRIDE(i, size) {
    const bool kept = keep(seed, i, threshold);
    mask[i] = kept;
    y[i] = (x[i] * (kept ? T(1) : T(0))) * scale;
  }
}

template <typename T>
__global__ void dropout_backward_kernel(const T* __restrict__ dy, const bool* __restrict__ mask,
                                        T* __restrict__ dx, int64_t size, T scale) {
  FASTNN_GRID_STRIDE(i, size) { dx[i] = (dy[i] * (mask[i] ? T(1) : T(0))) * scale; }
}

}  // namespace

template <typename T>
cudaError_t dropout_forward(const T* x, T* y, bool* mask, int64_t size, uint64_t seed,
                            uint32_t threshold, double scale, cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  dropout_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(x, y, mask, size, seed, threshold,
                                                           T(scale));
  return cudaGetLastError();
}

template <typename T>
cudaError_t dropout_backward(const T* dy, const bool* mask, T* dx, int64_t size, double scale,
                             cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  dropout_backward_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(dy, mask, dx, size,
                                                                    T(scale));
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                       \
  template cudaError_t dropout_forward<T>(const T*, T*, bool*, int64_t, uint64_t, uint32_t,    \
                                          double, cudaStream_t);                               \
  template cudaError_t dropout_backward<T>(const T*, const bool*, T*, int64_t, double,         \
                                           cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
