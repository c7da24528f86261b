// Softmax cross-entropy, forward and backward; one warp per row of logits.
//
// The forward computes the row maximum, the log of the sum of exponentials and from them
// log_softmax; it writes the probabilities (exp of log_softmax, what the backward takes)
// and each row's loss. The batch mean is a deterministic CuPy reduction of those row
// losses in Python (a few hundred values at most).
// Labels are class indices (an index out of range gives a NaN loss and gradient row, never
// an out-of-bounds read; fastnn.ops rejects them before) or dense float targets.
#include "common.cuh"

namespace fastnn::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = kBlock / kWarp;

// NaN-propagating max, as NumPy's.
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) { return (b > a || is_nan(b)) ? b : a; }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

template <typename T>
__global__ void softmax_cross_entropy_kernel(const T* __restrict__ logits,
                                             const int64_t* __restrict__ labels_index,
                                             const T* __restrict__ labels_dense,
                                             T* __restrict__ probs, T* __restrict__ row_loss,
                                             int64_t n, int64_t classes) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t{blockIdx.x} * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= n) return;  // whole warps leave together
  const T* z = logits + row * classes;
  T peak = T(-INFINITY);
  for (int64_t c = lane; c < classes; c += kWarp) peak = nan_max(peak, z[c]);
  peak = warp_max(peak);
  T total = T(0);
  for (int64_t c = lane; c < classes; c += kWarp) total += exp(z[c] - peak);
  const T log_total = log(warp_sum(total));
  T weighted = T(0);
  for (int64_t c = lane; c < classes; c += kWarp) {
    const T log_prob = z[c] - peak - log_total;
    probs[row * classes + c] = exp(log_prob);
    if (labels_dense != nullptr) weighted += labels_dense[row * classes + c] * log_prob;
  }
  weighted = warp_sum(weighted);
  if (lane == 0) {
    if (labels_dense != nullptr) {
      row_loss[row] = -weighted;
    } else {
      const int64_t label = labels_index[row];
      row_loss[row] = (label >= 0 && label < classes) ? -(z[label] - peak - log_total)
                                                      : T(NAN);
    }
  }
}

// dx = scale * (probs * sum(targets) - targets), scale = dloss / n.
template <typename T>
__global__ void softmax_cross_entropy_backward_kernel(T scale, const T* __restrict__ probs,
                                                      const int64_t* __restrict__ labels_index,
                                                      const T* __restrict__ labels_dense,
                                                      T* __restrict__ dx, int64_t n,
                                                      int64_t classes) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t{blockIdx.x} * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= n) return;
  const T* p = probs + row * classes;
  T* out = dx + row * classes;
  if (labels_dense != nullptr) {
    const T* t = labels_dense + row * classes;
    T total = T(0);
    for (int64_t c = lane; c < classes; c += kWarp) total += t[c];
    total = warp_sum(total);
    for (int64_t c = lane; c < classes; c += kWarp) out[c] = (p[c] * total - t[c]) * scale;
  } else {
    const int64_t label = labels_index[row];
    const bool valid = label >= 0 && label < classes;
    for (int64_t c = lane; c < classes; c += kWarp) {
      out[c] = valid ? (p[c] - (c == label ? T(1) : T(0))) * scale : T(NAN);
    }
  }
}

unsigned row_blocks(int64_t n) {
  return static_cast<unsigned>((n + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace

template <typename T>
cudaError_t softmax_cross_entropy_forward(const T* logits, const int64_t* labels_index,
                                          const T* labels_dense, T* probs, T* row_loss,
                                          int64_t n, int64_t classes, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  softmax_cross_entropy_kernel<T><<<row_blocks(n), kBlock, 0, stream>>>(
      logits, labels_index, labels_dense, probs, row_loss, n, classes);
  return cudaGetLastError();
}

template <typename T>
cudaError_t softmax_cross_entropy_backward(double scale, const T* probs,
                                           const int64_t* labels_index, const T* labels_dense,
                                           T* dx, int64_t n, int64_t classes,
                                           cudaStream_t stream) {
  if (n == 0 || classes == 0) return cudaSuccess;
  softmax_cross_entropy_backward_kernel<T><<<row_blocks(n), kBlock, 0, stream>>>(
      T(scale), probs, labels_index, labels_dense, dx, n, classes);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                     \
  template cudaError_t softmax_cross_entropy_forward<T>(const T*, const int64_t*, const T*, \
                                                        T*, T*, int64_t, int64_t,           \
                                                        cudaStream_t);                      \
  template cudaError_t softmax_cross_entropy_backward<T>(double, const T*, const int64_t*,  \
                                                         const T*, T*, int64_t, int64_t,    \
                                                         cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
