// Host-side launchers of fastnn's CUDA kernels: plain C++ taking device pointers, sizes
// and a stream.  Each enqueues its kernels on `stream`, allocates nothing (outputs and
// workspaces come from the caller), and returns the launch status from cudaGetLastError,
// which the bindings (csrc/python/<family>_cuda.cpp) turn into a RuntimeError naming the op.
// Every launcher is instantiated for float and double in its op family's .cu file.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace fastnn::cuda {

// Fused epilogues and activation kernels share these codes (Python passes them).
enum Activation : int { kIdentity = 0, kRelu = 1, kSigmoid = 2, kTanh = 3 };

// Geometry of a 2-D convolution over NHWC images with HWIO weights.
struct ConvShape {
  int64_t n;
  int h, w, c_in;       // input image
  int ho, wo, c_out;    // output image
  int kh, kw;           // kernel taps
  int stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
};

// Geometry of a 2-D pooling window over NHWC (channels_last) or NCHW images.
struct PoolShape {
  int64_t n;
  int h, w, c, ho, wo;
  int kh, kw, stride_h, stride_w, pad_h, pad_w;
  bool channels_last;
};

// ---------------------------------------------------------------- activations.cu
template <typename T>
cudaError_t activation_forward(int activation, const T* x, T* y, int64_t size,
                               cudaStream_t stream);
template <typename T>
cudaError_t activation_backward(int activation, const T* dy, const T* y, T* dx, int64_t size,
                                cudaStream_t stream);

// ---------------------------------------------------------------- dense.cu
// y_rc[r, c] = activation(y_rc[r, c] + b_c[c]) in place (b_c may be null).
template <typename T>
cudaError_t bias_activation(T* y_rc, const T* b_c, int64_t rows, int64_t cols, int activation,
                            cudaStream_t stream);
// Sum of dy over every axis but the channel axis; dy is seen as (outer, channels, inner).
// `partial` holds `chunks * channels` values (chunks from bias_backward_chunks).
int64_t bias_backward_chunks(int64_t per_channel, int64_t channels);
template <typename T>
cudaError_t bias_backward(const T* dy, int64_t outer, int64_t channels, int64_t inner,
                          T* partial, int64_t chunks, T* db, cudaStream_t stream);
// out[i] = sum over s of partial[s * count + i], in order s = 0, 1, ... (deterministic).
template <typename T>
cudaError_t sum_partials(const T* partial, int64_t splits, int64_t count, T* out,
                         cudaStream_t stream);

// ---------------------------------------------------------------- conv.cu
template <typename T>
cudaError_t conv2d_forward(const T* x_nhwc, const T* w_hwio, const T* b, int activation,
                           T* y_nhwc, const ConvShape& s, cudaStream_t stream);
template <typename T>
cudaError_t conv2d_backward_data(const T* dy_nhwc, const T* w_hwio, T* dx_nhwc,
                                 const ConvShape& s, cudaStream_t stream);
// Split-K over the n*ho*wo reduction: `splits` partial dW go to `workspace`
// (splits * kh*kw*c_in*c_out values; unused when splits == 1), then are summed in order.
int64_t conv2d_backward_weights_splits(const ConvShape& s);
template <typename T>
cudaError_t conv2d_backward_weights(const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    T* workspace, int64_t splits, const ConvShape& s,
                                    cudaStream_t stream);

// ---------------------------------------------------------------- pool.cu
template <typename T>
cudaError_t max_pool2d_forward(const T* x, T* y, int64_t* argmax, const PoolShape& s,
                               cudaStream_t stream);
template <typename T>
cudaError_t max_pool2d_backward(const T* dy, const int64_t* argmax, int64_t dy_size, T* dx,
                                int64_t dx_size, cudaStream_t stream);
template <typename T>
cudaError_t avg_pool2d_forward(const T* x, T* y, bool count_include_pad, const PoolShape& s,
                               cudaStream_t stream);
template <typename T>
cudaError_t avg_pool2d_backward(const T* dy, T* dx, bool count_include_pad, const PoolShape& s,
                                cudaStream_t stream);

// ---------------------------------------------------------------- lrn.cu
// Channels are `channels` apart by `inner` elements (1 for NHWC, h*w for NCHW).
struct LrnShape {
  int64_t size;
  int channels;
  int64_t inner;
  int depth_radius;
  double bias, alpha, beta;
};
template <typename T>
cudaError_t lrn_forward(const T* x, T* y, T* scale, const LrnShape& s, cudaStream_t stream);
template <typename T>
cudaError_t lrn_backward(const T* dy, const T* x, const T* y, const T* scale, T* dx,
                         const LrnShape& s, cudaStream_t stream);

// ---------------------------------------------------------------- losses.cu
// One of labels_index (n,) / labels_dense (n, classes) is non-null.
template <typename T>
cudaError_t softmax_cross_entropy_forward(const T* logits, const int64_t* labels_index,
                                          const T* labels_dense, T* probs, T* row_loss,
                                          int64_t n, int64_t classes, cudaStream_t stream);
template <typename T>
cudaError_t softmax_cross_entropy_backward(double scale, const T* probs,
                                           const int64_t* labels_index, const T* labels_dense,
                                           T* dx, int64_t n, int64_t classes,
                                           cudaStream_t stream);

// ---------------------------------------------------------------- dropout.cu
template <typename T>
cudaError_t dropout_forward(const T* x, T* y, bool* mask, int64_t size, uint64_t seed,
                            uint32_t threshold, double scale, cudaStream_t stream);
template <typename T>
cudaError_t dropout_backward(const T* dy, const bool* mask, T* dx, int64_t size, double scale,
                             cudaStream_t stream);

// ---------------------------------------------------------------- optim.cu
template <typename T>
cudaError_t sgd_update(T* param, T* grad, T* velocity, int64_t size, double lr,
                       double momentum, double weight_decay, bool nesterov,
                       cudaStream_t stream);
template <typename T>
cudaError_t adam_update(T* param, T* grad, T* m, T* v, int64_t size, double lr, double beta1,
                        double beta2, double eps, double weight_decay, double m_scale,
                        double v_scale, cudaStream_t stream);

}  // namespace fastnn::cuda
