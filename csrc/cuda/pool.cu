// Max and average pooling, forward and backward, in NHWC or NCHW directly (the layout only
// changes how a flat index splits into (n, h, w, c); no transposes).
//
// One thread per output element for the forwards. Max pooling walks its window in
// row-major order over the real (unpadded) cells: the first cell starts as the best, a
// later one wins only if it is greater, or is NaN while the best is not - so the first
// maximum wins, the first NaN wins over everything, and padding never wins (the
// reference's np.argmax rules). argmax is the flat index into x in x's own layout.
// The max backward scatters dy onto those indices with atomicAdd after zeroing dx (the
// windows may overlap; only x_shape is known there, not the window geometry). The average
// backward gathers instead: one thread per input element sums dy / divisor over the
// windows that cover it, so it needs no atomics and is deterministic.
#include "common.cuh"
#include "common/shapes.h"

namespace fastnn::cuda {
namespace {

struct Index4 { int64_t n; int h, w, c; };

// (n, row, column, channel) of flat element `e` of an (n, rows, cols, c) image tensor in
// the layout of `s`.
__device__ __forceinline__ Index4 split_index(int64_t e, int rows, int cols, int channels,
                                              bool channels_last) {
  Index4 r;
  if (channels_last) {
    r.c = static_cast<int>(e % channels); e /= channels;
    r.w = static_cast<int>(e % cols); e /= cols;
    r.h = static_cast<int>(e % rows); r.n = e / rows;
  } else {
    r.w = static_cast<int>(e % cols); e /= cols;
    r.h = static_cast<int>(e % rows); e /= rows;
    r.c = static_cast<int>(e % channels); r.n = e / channels;
  }
  return r;
}

__device__ __forceinline__ int64_t flat_index(const PoolShape& s, int64_t n, int h, int w,
                                              int c) {
  return s.channels_last ? ((n * s.h + h) * s.w + w) * s.c + c
                         : ((n * s.c + c) * s.h + h) * s.w + w;
}

template <typename T>
__global__ void max_pool2d_kernel(const T* __restrict__ x, T* __restrict__ y,
                                  int64_t* __restrict__ argmax, const PoolShape s,
                                  int64_t size) {
  FASTNN_GRID_STRIDE(e, size) {
    const Index4 o = split_index(e, s.ho, s.wo, s.c, s.channels_last);
    const IndexRange<int> rows = window_cells(o.h, s.stride_h, s.pad_h, s.kh, s.h);
    const IndexRange<int> cols = window_cells(o.w, s.stride_w, s.pad_w, s.kw, s.w);
    bool found = false;
    T best = T(0);
    int64_t best_index = 0;
    for (int ih = rows.lo; ih < rows.hi; ++ih) {
      for (int iw = cols.lo; iw < cols.hi; ++iw) {
        const int64_t index = flat_index(s, o.n, ih, iw, o.c);
        const T v = x[index];
        if (!found || (!is_nan(best) && (v > best || is_nan(v)))) {
          best = v;
          best_index = index;
          found = true;
        }
      }
    }
    y[e] = found ? best : T(-INFINITY);  // found always holds when padding <= kernel / 2
    argmax[e] = best_index;
  }
}

template <typename T>
__global__ void scatter_add_kernel(const T* __restrict__ dy, const int64_t* __restrict__ index,
                                   int64_t size, T* __restrict__ dx, int64_t dx_size) {
  FASTNN_GRID_STRIDE(e, size) {
    const int64_t target = index[e];
    if (target >= 0 && target < dx_size) atomicAdd(dx + target, dy[e]);  // bad index: skip
  }
}

// Unpadded cells of window (oh, ow).
__device__ __forceinline__ int real_cells(const PoolShape& s, int oh, int ow) {
  const IndexRange<int> rows = window_cells(oh, s.stride_h, s.pad_h, s.kh, s.h);
  const IndexRange<int> cols = window_cells(ow, s.stride_w, s.pad_w, s.kw, s.w);
  return max(rows.hi - rows.lo, 0) * max(cols.hi - cols.lo, 0);
}

template <typename T>
__global__ void avg_pool2d_kernel(const T* __restrict__ x, T* __restrict__ y,
                                  bool count_include_pad, const PoolShape s, int64_t size) {
  FASTNN_GRID_STRIDE(e, size) {
    const Index4 o = split_index(e, s.ho, s.wo, s.c, s.channels_last);
    const IndexRange<int> rows = window_cells(o.h, s.stride_h, s.pad_h, s.kh, s.h);
    const IndexRange<int> cols = window_cells(o.w, s.stride_w, s.pad_w, s.kw, s.w);
    T total = T(0);
    for (int i = rows.lo; i < rows.hi; ++i) {
      for (int j = cols.lo; j < cols.hi; ++j) {
        total += x[flat_index(s, o.n, i, j, o.c)];
      }
    }
    const int divisor = count_include_pad ? s.kh * s.kw : real_cells(s, o.h, o.w);
    y[e] = total / T(divisor);
  }
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx,
                                           bool count_include_pad, const PoolShape s,
                                           int64_t size) {
  FASTNN_GRID_STRIDE(e, size) {
    const Index4 p = split_index(e, s.h, s.w, s.c, s.channels_last);
    const IndexRange<int> out_rows = windows_holding(p.h, s.stride_h, s.pad_h, s.kh, s.ho);
    const IndexRange<int> out_cols = windows_holding(p.w, s.stride_w, s.pad_w, s.kw, s.wo);
    T total = T(0);
    for (int oh = out_rows.lo; oh < out_rows.hi; ++oh) {
      for (int ow = out_cols.lo; ow < out_cols.hi; ++ow) {
        const int64_t o = s.channels_last ? ((p.n * s.ho + oh) * s.wo + ow) * s.c + p.c
                                          : ((p.n * s.c + p.c) * s.ho + oh) * s.wo + ow;
        const int divisor = count_include_pad ? s.kh * s.kw : real_cells(s, oh, ow);
        total += dy[o] / T(divisor);
      }
    }
    dx[e] = total;
  }
}

int64_t output_size(const PoolShape& s) { return s.n * s.ho * s.wo * s.c; }
int64_t input_size(const PoolShape& s) { return s.n * s.h * s.w * s.c; }

}  // namespace

template <typename T>
cudaError_t max_pool2d_forward(const T* x, T* y, int64_t* argmax, const PoolShape& s,
                               cudaStream_t stream) {
  const int64_t size = output_size(s);
  if (size == 0) return cudaSuccess;
  max_pool2d_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(x, y, argmax, s, size);
  return cudaGetLastError();
}

template <typename T>
cudaError_t max_pool2d_backward(const T* dy, const int64_t* argmax, int64_t dy_size, T* dx,
                                int64_t dx_size, cudaStream_t stream) {
  if (dx_size == 0) return cudaSuccess;
  cudaError_t err = cudaMemsetAsync(dx, 0, sizeof(T) * dx_size, stream);
  if (err != cudaSuccess || dy_size == 0) return err;
  scatter_add_kernel<T><<<grid_for(dy_size), kBlock, 0, stream>>>(dy, argmax, dy_size, dx,
                                                                  dx_size);
  return cudaGetLastError();
}

template <typename T>
cudaError_t avg_pool2d_forward(const T* x, T* y, bool count_include_pad, const PoolShape& s,
                               cudaStream_t stream) {
  const int64_t size = output_size(s);
  if (size == 0) return cudaSuccess;
  avg_pool2d_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(x, y, count_include_pad, s, size);
  return cudaGetLastError();
}

template <typename T>
cudaError_t avg_pool2d_backward(const T* dy, T* dx, bool count_include_pad, const PoolShape& s,
                                cudaStream_t stream) {
  const int64_t size = input_size(s);
  if (size == 0) return cudaSuccess;
  avg_pool2d_backward_kernel<T><<<grid_for(size), kBlock, 0, stream>>>(dy, dx, count_include_pad,
                                                                       s, size);
  return cudaGetLastError();
}

#define INSTANTIATE(T)                                                                       \
  template cudaError_t max_pool2d_forward<T>(const T*, T*, int64_t*, const PoolShape&,         \
                                             cudaStream_t);                                    \
  template cudaError_t max_pool2d_backward<T>(const T*, const int64_t*, int64_t, T*, int64_t,  \
                                              cudaStream_t);                                   \
  template cudaError_t avg_pool2d_forward<T>(const T*, T*, bool, const PoolShape&,             \
                                             cudaStream_t);                                    \
  template cudaError_t avg_pool2d_backward<T>(const T*, T*, bool, const PoolShape&, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
