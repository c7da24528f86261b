// 2-D convolution, NHWC images and HWIO weights: forward and both backward passes as
// implicit GEMMs (no im2col buffer).
//
// One tiled GEMM kernel serves all three; a small "problem" struct says how to read the
// virtual A (m, k) and B (k, n) matrices from the tensors and where a result goes:
//   forward          A = im2col(x)  (n*ho*wo, kh*kw*c_in)   B = w (kh*kw*c_in, c_out)
//   backward data    A = "col2im" view of dy (n*h*w, kh*kw*c_out), zero where no output
//                    pixel reads the input through that tap; B = w seen as (tap, c_out, c_in)
//   backward weights A = im2col(x) transposed (kh*kw*c_in, n*ho*wo)  B = dy (n*ho*wo, c_out)
// Blocking: a 64x64 output tile per 256-thread block, 4x4 outputs per thread (rows and
// columns 16 apart, so the stores of a warp are contiguous), 8-deep k slices staged in
// shared memory. A is read with k fastest (channels are contiguous in NHWC), B with n
// fastest. Each thread decodes its two A rows (pixel or tap coordinates) once and one k
// per slice, so the index arithmetic stays off the inner product loop.
// The weight gradient's long reduction (every output pixel) is split over blockIdx.z into
// partials summed in a fixed order afterwards: parallel enough for small filters, and
// deterministic (no atomics). The bias and the activation are fused into the forward's
// store.
#include <algorithm>

#include "common.cuh"

namespace fastnn::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 8, kThreads = 256;
constexpr int kRowsPerPass = kThreads / kTileK;  // A rows loaded per pass (32)
constexpr int kKPerPass = kThreads / kTileN;     // B rows loaded per pass (4)
constexpr int kSkew = 4;                         // keeps the A-tile stores off one bank

template <typename T, typename Problem>
__global__ void __launch_bounds__(kThreads)
implicit_gemm_kernel(const Problem p, int64_t M, int64_t N, int64_t K, int64_t k_per_split) {
  __shared__ T a_tile[kTileK][kTileM + kSkew];
  __shared__ T b_tile[kTileK][kTileN];
  const int tid = threadIdx.x;
  const int64_t m0 = int64_t{blockIdx.x} * kTileM;
  const int64_t n0 = int64_t{blockIdx.y} * kTileN;
  const int64_t k_begin = int64_t{blockIdx.z} * k_per_split;
  const int64_t k_end = min(K, k_begin + k_per_split);

  const int a_k = tid % kTileK, a_row = tid / kTileK;
  const typename Problem::Row rows[2] = {p.row(m0 + a_row, M),
                                         p.row(m0 + a_row + kRowsPerPass, M)};
  const int b_col = tid % kTileN, b_k = tid / kTileN;
  const int tx = tid % 16, ty = tid / 16;

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const int64_t k = k0 + a_k;
    const bool k_ok = k < k_end;
    const typename Problem::Col col = p.col(k_ok ? k : k0);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      a_tile[a_k][a_row + kRowsPerPass * i] = k_ok ? p.a(rows[i], col) : T(0);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int kk = b_k + kKPerPass * i;
      const int64_t kb = k0 + kk, n = n0 + b_col;
      b_tile[kk][b_col] = (kb < k_end && n < N) ? p.b(kb, n) : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      T a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = a_tile[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = b_tile[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx + 16 * j;
      if (n < N) p.store(m, n, acc[i][j], blockIdx.z);
    }
  }
}

// ---------------------------------------------------------------- the three problems

template <typename T>
struct ConvForward {
  const T* x;
  const T* w;
  const T* bias;
  T* y;
  ConvShape s;
  int activation;

  struct Row { int64_t base; int ih0, iw0; bool valid; };  // one output pixel
  struct Col { int off_h, off_w, ci; };                     // one (tap, input channel)

  __device__ Row row(int64_t m, int64_t M) const {
    if (m >= M) return {0, 0, 0, false};
    const int ow = static_cast<int>(m % s.wo);
    const int64_t t = m / s.wo;
    const int oh = static_cast<int>(t % s.ho);
    const int64_t image = t / s.ho;
    return {image * s.h * s.w * s.c_in, oh * s.stride_h - s.pad_top,
            ow * s.stride_w - s.pad_left, true};
  }
  __device__ Col col(int64_t k) const {
    const int kk = static_cast<int>(k);
    const int ci = kk % s.c_in, tap = kk / s.c_in;
    return {(tap / s.kw) * s.dilation_h, (tap % s.kw) * s.dilation_w, ci};
  }
  __device__ T a(const Row& r, const Col& c) const {
    const int ih = r.ih0 + c.off_h, iw = r.iw0 + c.off_w;
    if (!r.valid || ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) return T(0);
    return x[r.base + (int64_t{ih} * s.w + iw) * s.c_in + c.ci];
  }
  __device__ T b(int64_t k, int64_t n) const { return w[k * s.c_out + n]; }
  __device__ void store(int64_t m, int64_t n, T v, unsigned) const {
    if (bias != nullptr) v += bias[n];
    y[m * s.c_out + n] = activate(v, activation);
  }
};

template <typename T>
struct ConvBackwardData {
  const T* dy;
  const T* w;
  T* dx;
  ConvShape s;

  struct Row { int64_t base; int h_pad, w_pad; bool valid; };  // one input pixel
  struct Col { int off_h, off_w, co; };                        // one (tap, output channel)

  __device__ Row row(int64_t m, int64_t M) const {
    if (m >= M) return {0, 0, 0, false};
    const int iw = static_cast<int>(m % s.w);
    const int64_t t = m / s.w;
    const int ih = static_cast<int>(t % s.h);
    const int64_t image = t / s.h;
    return {image * s.ho * s.wo * s.c_out, ih + s.pad_top, iw + s.pad_left, true};
  }
  __device__ Col col(int64_t k) const {
    const int kk = static_cast<int>(k);
    const int co = kk % s.c_out, tap = kk / s.c_out;
    return {(tap / s.kw) * s.dilation_h, (tap % s.kw) * s.dilation_w, co};
  }
  // The output pixel that reads this input pixel through this tap, if any.
  __device__ T a(const Row& r, const Col& c) const {
    const int ph = r.h_pad - c.off_h, pw = r.w_pad - c.off_w;
    if (!r.valid || ph < 0 || pw < 0 || ph % s.stride_h != 0 || pw % s.stride_w != 0) {
      return T(0);
    }
    const int oh = ph / s.stride_h, ow = pw / s.stride_w;
    if (oh >= s.ho || ow >= s.wo) return T(0);
    return dy[r.base + (int64_t{oh} * s.wo + ow) * s.c_out + c.co];
  }
  __device__ T b(int64_t k, int64_t n) const {
    const int64_t co = k % s.c_out, tap = k / s.c_out;
    return w[(tap * s.c_in + n) * s.c_out + co];
  }
  __device__ void store(int64_t m, int64_t n, T v, unsigned) const { dx[m * s.c_in + n] = v; }
};

template <typename T>
struct ConvBackwardWeights {
  const T* dy;
  const T* x;
  T* out;              // dW itself, or the workspace of split partials
  int64_t split_size;  // kh*kw*c_in*c_out
  ConvShape s;

  struct Row { int off_h, off_w, ci; bool valid; };  // one (tap, input channel)
  struct Col { int64_t base; int ih0, iw0; };         // one output pixel

  __device__ Row row(int64_t m, int64_t M) const {
    if (m >= M) return {0, 0, 0, false};
    const int mm = static_cast<int>(m);
    const int ci = mm % s.c_in, tap = mm / s.c_in;
    return {(tap / s.kw) * s.dilation_h - s.pad_top, (tap % s.kw) * s.dilation_w - s.pad_left,
            ci, true};
  }
  __device__ Col col(int64_t k) const {
    const int ow = static_cast<int>(k % s.wo);
    const int64_t t = k / s.wo;
    const int oh = static_cast<int>(t % s.ho);
    const int64_t image = t / s.ho;
    return {image * s.h * s.w * s.c_in, oh * s.stride_h, ow * s.stride_w};
  }
  __device__ T a(const Row& r, const Col& c) const {
    const int ih = c.ih0 + r.off_h, iw = c.iw0 + r.off_w;
    if (!r.valid || ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) return T(0);
    return x[c.base + (int64_t{ih} * s.w + iw) * s.c_in + r.ci];
  }
  __device__ T b(int64_t k, int64_t n) const { return dy[k * s.c_out + n]; }
  __device__ void store(int64_t m, int64_t n, T v, unsigned split) const {
    out[split * split_size + m * s.c_out + n] = v;
  }
};

template <typename T, typename Problem>
cudaError_t launch_gemm(const Problem& p, int64_t M, int64_t N, int64_t K, int64_t splits,
                        cudaStream_t stream) {
  if (M == 0 || N == 0) return cudaSuccess;
  const int64_t k_per_split = (K + splits - 1) / splits;
  const dim3 grid(static_cast<unsigned>((M + kTileM - 1) / kTileM),
                  static_cast<unsigned>(std::min<int64_t>((N + kTileN - 1) / kTileN, 1 << 30)),
                  static_cast<unsigned>(splits));
  implicit_gemm_kernel<T, Problem><<<grid, kThreads, 0, stream>>>(p, M, N, K,
                                                                  std::max<int64_t>(k_per_split, 1));
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t conv2d_forward(const T* x_nhwc, const T* w_hwio, const T* b, int activation,
                           T* y_nhwc, const ConvShape& s, cudaStream_t stream) {
  const ConvForward<T> p{x_nhwc, w_hwio, b, y_nhwc, s, activation};
  return launch_gemm<T>(p, s.n * s.ho * s.wo, s.c_out, int64_t{s.kh} * s.kw * s.c_in, 1,
                        stream);
}

template <typename T>
cudaError_t conv2d_backward_data(const T* dy_nhwc, const T* w_hwio, T* dx_nhwc,
                                 const ConvShape& s, cudaStream_t stream) {
  const ConvBackwardData<T> p{dy_nhwc, w_hwio, dx_nhwc, s};
  return launch_gemm<T>(p, s.n * s.h * s.w, s.c_in, int64_t{s.kh} * s.kw * s.c_out, 1, stream);
}

// Enough splits for a few hundred blocks, each reducing at least 1024 output pixels.
int64_t conv2d_backward_weights_splits(const ConvShape& s) {
  const int64_t M = int64_t{s.kh} * s.kw * s.c_in, N = s.c_out, K = s.n * s.ho * s.wo;
  const int64_t tiles = std::max<int64_t>(
      1, ((M + kTileM - 1) / kTileM) * ((N + kTileN - 1) / kTileN));
  const int64_t wanted = std::max<int64_t>(1, 512 / tiles);
  const int64_t useful = std::max<int64_t>(1, K / 1024);
  return std::min<int64_t>({wanted, useful, 256});
}

template <typename T>
cudaError_t conv2d_backward_weights(const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    T* workspace, int64_t splits, const ConvShape& s,
                                    cudaStream_t stream) {
  const int64_t M = int64_t{s.kh} * s.kw * s.c_in, N = s.c_out, K = s.n * s.ho * s.wo;
  splits = std::max<int64_t>(splits, 1);
  if (splits > 1 && workspace == nullptr) return cudaErrorInvalidValue;
  const ConvBackwardWeights<T> p{dy_nhwc, x_nhwc, splits > 1 ? workspace : dw_hwio, M * N, s};
  cudaError_t err = launch_gemm<T>(p, M, N, K, splits, stream);
  if (err != cudaSuccess || splits == 1) return err;
  return sum_partials<T>(workspace, splits, M * N, dw_hwio, stream);
}

#define INSTANTIATE(T)                                                                    \
  template cudaError_t conv2d_forward<T>(const T*, const T*, const T*, int, T*,             \
                                         const ConvShape&, cudaStream_t);                   \
  template cudaError_t conv2d_backward_data<T>(const T*, const T*, T*, const ConvShape&,    \
                                               cudaStream_t);                               \
  template cudaError_t conv2d_backward_weights<T>(const T*, const T*, T*, T*, int64_t,      \
                                                  const ConvShape&, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace fastnn::cuda
