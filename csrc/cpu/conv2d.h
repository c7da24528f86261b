// 2-D convolution on NHWC images and HWIO weights: forward (with fused bias and
// activation), backward-data and backward-weights.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/activations.h"

namespace fastnn::cpu {

struct Conv2dShape {
  int64_t batch, in_h, in_w, in_c;    // x: batch x in_h x in_w x in_c
  int64_t kernel_h, kernel_w, out_c;  // w: kernel_h x kernel_w x in_c x out_c
  int64_t out_h, out_w;               // y: batch x out_h x out_w x out_c
  int64_t stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
};

// Throws std::invalid_argument for negative or empty sizes, strides or
// dilations below 1 and negative padding.
void check_conv2d_shape(const Conv2dShape& s);

// True when the forward of this shape runs the direct kernels (conv2d_direct.h)
// instead of im2col + GEMM: a short patch kh*kw*in_c, or a narrow output with
// few input channels, where the indirect GEMM over kernel rows does not take the
// shape (conv2d.cpp).  Backward-weights takes them for a short patch only.
template <typename T> bool use_direct_conv(const Conv2dShape& s);
bool use_direct_conv_backward_weights(const Conv2dShape& s);

// Workspace bytes each entry point needs with this many threads.
template <typename T> size_t conv2d_forward_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t conv2d_backward_data_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t conv2d_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);

template <typename T>
void conv2d_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                    T* y_nhwc, void* workspace, size_t workspace_bytes, int threads);
template <typename T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                          size_t workspace_bytes, int threads);
template <typename T>
void conv2d_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                             void* workspace, size_t workspace_bytes, int threads);

}  // namespace fastnn::cpu
