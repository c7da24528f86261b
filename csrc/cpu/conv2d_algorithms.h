// The convolution algorithms conv2d.cpp chooses between, and what they share.
// Each has its own file: conv2d_direct.cpp (short patches, conv2d_direct.h),
// conv2d_winograd.cpp (3x3 stride 1), conv2d_indirect.cpp (indirect GEMM) and
// conv2d_im2col.cpp (im2col + GEMM).
// Every entry point takes a checked shape (check_conv2d_shape) and a workspace
// of at least its *_workspace_bytes, 64-byte aligned.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cpu/activations.h"
#include "cpu/conv2d.h"

namespace fastnn::cpu {

inline int64_t patch_size(const Conv2dShape& s) { return s.kernel_h * s.kernel_w * s.in_c; }

// A 1x1 convolution with stride 1 and no padding: a plain GEMM on x.
inline bool is_pointwise(const Conv2dShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w;
}

// std::invalid_argument "<op>: workspace of <have> bytes, need <need>" when have < need.
void require_workspace(size_t have, size_t need, const char* op);

// dw = the threads' partial weight gradients added in thread order
// (deterministic for a given thread count).
template <typename T, typename Partial>
void sum_partials(T* dw_hwio, int64_t size, int64_t count, const Partial& partial) {
  if (count == 0) {  // no rows: nothing ran, the gradient is zero
    std::fill(dw_hwio, dw_hwio + size, T(0));
    return;
  }
  std::copy(partial(0), partial(0) + size, dw_hwio);
  for (int64_t c = 1; c < count; ++c) {
    const T* p = partial(c);
    for (int64_t i = 0; i < size; ++i) dw_hwio[i] += p[i];
  }
}

// Indirect GEMM (conv2d_indirect.cpp): forward and backward-weights at any
// stride, backward-data at stride 1.
template <typename T> size_t indirect_forward_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t indirect_backward_data_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t indirect_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void indirect_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                      T* y_nhwc, void* workspace, int threads);
template <typename T>
void indirect_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                            int threads);
template <typename T>
void indirect_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                               void* workspace, int threads);

// ... and the forward and backward-weights with a kernel row's pixels as one run
// (kernel_w * in_c values), for few input channels; dilation_w must be 1.
template <typename T> size_t indirect_rows_forward_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void indirect_rows_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                           T* y_nhwc, void* workspace, int threads);
template <typename T> size_t indirect_rows_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void indirect_rows_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    void* workspace, int threads);
// Winograd F(4x4, 3x3) and F(2x2, 3x3) (conv2d_winograd.cpp): the forward of 3x3
// stride-1 undilated convolutions with >= 16 channels in and out, where its rules hold
// for this many threads.
template <typename T> bool use_winograd_forward(const Conv2dShape& s, int threads);
template <typename T> size_t winograd_forward_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void winograd_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                      T* y_nhwc, void* workspace, int threads);
// Backward-data as that forward over dy: t = backward_data_as_forward(s) (conv2d.cpp),
// w_hwio the weights of s (3 x 3 x t.out_c x t.in_c), workspace of
// winograd_forward_workspace_bytes(t, threads).
template <typename T>
void winograd_backward_data(const Conv2dShape& t, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                            int threads);
// ... and F(3x3, 4x4) or F(3x3, 2x2) for their backward-weights.
template <typename T> bool use_winograd_backward_weights(const Conv2dShape& s);
template <typename T> size_t winograd_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void winograd_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                               void* workspace, int threads);

// Blocked im2col + GEMM (conv2d_im2col.cpp): any shape.
template <typename T> size_t im2col_forward_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t im2col_backward_data_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t im2col_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void im2col_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                    T* y_nhwc, void* workspace, int threads);
template <typename T>
void im2col_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                          int threads);
template <typename T>
void im2col_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                             void* workspace, int threads);

// ... and backward-weights as one threaded GEMM per block of rows, no per-thread
// partial dw (for a large dw).
template <typename T> size_t im2col_shared_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void im2col_shared_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    void* workspace, int threads);

// col2im's per-ISA kernel (conv2d_col2im_kernels.h, compiled by
// conv2d_col2im_<isa>.cpp), resolved once by conv2d_im2col.cpp: adds the patch
// gradients of output rows [row0, row0 + rows) back into dx.
template <typename T>
struct Col2imKernels {
  void (*add)(const Conv2dShape& s, const T* cols, int64_t row0, int64_t rows, T* dx_nhwc);
};

namespace portable { template <typename T> Col2imKernels<T> col2im_kernel_table(); }
namespace avx2 { template <typename T> Col2imKernels<T> col2im_kernel_table(); }
namespace avx512 { template <typename T> Col2imKernels<T> col2im_kernel_table(); }

}  // namespace fastnn::cpu
