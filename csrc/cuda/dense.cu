// The linear layer's fused bias + activation epilogue (the GEMM itself is cuBLAS through
// CuPy), the bias gradient, and the ordered sum of split partials that the bias gradient
// and conv2d_backward_weights share.
//
// Reductions here are deterministic: each block owns a fixed slice of rows and writes one
// partial per channel, and a second kernel adds the partials in a fixed order, so the same
// input gives the same bits on every run (no atomics).
#include <algorithm>

#include "common.cuh"

namespace fastnn::cuda {
namespace {

template <typename T>
__global__ void bias_activation_kernel(T* __restrict__ y, const T* __restrict__ b,
                                       int64_t size, int64_t cols, int activation) {
  FASTNN_GRID_STRIDE(i, size) {
    T v = y[i];
    if (b != nullptr) v += b[i % cols];
    y[i] = activate(v, activation);
  }
}

constexpr int kChannelTile = 32;  // channels per block (threadIdx.x), coalesced for NHWC
constexpr int kRowLanes = 8;      // rows read at once per block (threadIdx.y)

// Block (x, y): channels [32x, 32x + 32) over rows [y * rows_per_chunk, ...) of the
// (per_channel = outer * inner) elements of each channel.
template <typename T>
__global__ void bias_backward_partial_kernel(const T* __restrict__ dy, int64_t channels,
                                             int64_t inner, int64_t per_channel,
                                             int64_t rows_per_chunk, T* __restrict__ partial) {
  __shared__ T sums[kRowLanes][kChannelTile + 1];
  const int64_t c = int64_t{blockIdx.x} * kChannelTile + threadIdx.x;
  const int64_t begin = int64_t{blockIdx.y} * rows_per_chunk;
  const int64_t end = min(per_channel, begin + rows_per_chunk);
  T acc = T(0);
  if (c < channels) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      const int64_t outer = r / inner, i = r - outer * inner;
      acc += dy[(outer * channels + c) * inner + i];
    }
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    T total = T(0);
    for (int lane = 0; lane < kRowLanes; ++lane) total += sums[lane][threadIdx.x];
    partial[int64_t{blockIdx.y} * channels + c] = total;
  }
}

template <typename T>
__global__ void sum_partials_kernel(const T* __restrict__ partial, int64_t splits,
                                    int64_t count, T* __restrict__ out) {
  FASTNN_GRID_STRIDE(i, count) {
    T total = T(0);
    for (int64_t s = 0; s < splits; ++s) total += partial[s * count + i];
    out[i] = total;
  }
}

}  // namespace

template <typename T>
cudaError_t bias_activation(T* y_rc, const T* b_c, int64_t rows, int64_t cols, int activation,
                            cudaStream_t stream) {
  const int64_t size = rows * cols;
  if (size == 0) return cudaSuccess;
  bias_activation_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(y_rc, b_c, size, cols,
                                                                   activation);
  return cudaGetLastError();
}

// Enough chunks to give a few hundred blocks in all, each summing at least 256 rows.
int64_t bias_backward_chunks(int64_t per_channel, int64_t channels) {
  const int64_t channel_tiles = (channels + kChannelTile - 1) / kChannelTile;
  const int64_t wanted = std::max<int64_t>(1, 256 / std::max<int64_t>(channel_tiles, 1));
  const int64_t useful = std::max<int64_t>(1, per_channel / 256);
  return std::min<int64_t>({wanted, useful, 65535});
}

template <typename T>
cudaError_t bias_backward(const T* dy, int64_t outer, int64_t channels, int64_t inner,
                          T* partial, int64_t chunks, T* db, cudaStream_t stream) {
  if (channels == 0) return cudaSuccess;
  const int64_t per_channel = outer * inner;
  if (per_channel == 0 || chunks < 1) {
    cudaError_t err = cudaMemsetAsync(db, 0, sizeof(T) * channels, stream);
    return err != cudaSuccess ? err : cudaGetLastError();
  }
  const int64_t rows_per_chunk = (per_channel + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((channels + kChannelTile - 1) / kChannelTile),
                  static_cast<unsigned>(chunks));
  const dim3 block(kChannelTile, kRowLanes);
  bias_backward_partial_kernel<T><<<grid, block, 0, stream>>>(dy, channels, inner, per_channel,
                                                              rows_per_chunk, partial);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  return sum_partials<T>(partial, chunks, channels, db, stream);
}

template <typename T>
cudaError_t sum_partials(const T* partial, int64_t splits, int64_t count, T* out,
                         cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  sum_partials_kernel<T><<<grid_for(count), kBlock, 0, stream>>>(partial, splits, count, out);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                    \
  template cudaError_t bias_activation<T>(T*, const T*, int64_t, int64_t, int, cudaStream_t); \
  template cudaError_t bias_backward<T>(const T*, int64_t, int64_t, int64_t, T*, int64_t, T*, \
                                        cudaStream_t);                                      \
  template cudaError_t sum_partials<T>(const T*, int64_t, int64_t, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
