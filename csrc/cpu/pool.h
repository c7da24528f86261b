// Max and average pooling over NHWC images, forward and backward.
//
// The channel axis is contiguous in NHWC, so a window reduction is a vertical
// max/add of channel vectors: every kernel walks output (or input) pixels and
// reduces whole channel blocks at once.  NCHW callers transpose at the Python
// boundary; max_pool2d can still report argmax as a flat index into the NCHW
// input (argmax_nchw), so its backward stays layout-free.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

// Input (batch, height, width, channels), output (out_height, out_width); the
// caller guarantees pad < kernel on each axis, so every window holds a real pixel.
struct Pool2dShape {
  int64_t batch, height, width, channels;
  int64_t out_height, out_width;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// y_nhwc[n, oh, ow, c] = max over the window; argmax holds the flat index of the
// winner in x (NHWC order, or NCHW order when argmax_nchw).  Ties go to the first
// window cell in row-major order, the first NaN wins, padding never wins.
template <typename T>
void max_pool2d_forward(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc, int64_t* argmax,
                        bool argmax_nchw);

// dx = 0, then dx.flat[argmax[i]] += dy[i].  dy/argmax hold `batch` blocks of
// dy_per_batch values, dx `batch` blocks of dx_per_batch; an index must lie in
// [0, batch * dx_per_batch) (std::invalid_argument otherwise).  Indices into the
// own batch block (what max_pool2d_forward produces) are scattered in parallel.
template <typename T>
void max_pool2d_backward(const T* dy, const int64_t* argmax, T* dx, int64_t batch,
                         int64_t dy_per_batch, int64_t dx_per_batch);

// Whether max_pool2d_forward runs its unrolled 2x2 / stride-2 kernel on this
// shape (NHWC argmax), and that kernel on rows [row_begin, row_end) of batch x
// out_height, on the calling thread, with index_base added to every argmax:
// the pool half of a fused convolution (conv2d_direct.h).
template <typename T>
bool max_pool2d_is_2x2(const Pool2dShape& shape);
template <typename T>
void max_pool2d_2x2_rows(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc, int64_t* argmax,
                         int64_t index_base, int64_t row_begin, int64_t row_end);

template <typename T>
void avg_pool2d_forward(const Pool2dShape& shape, const T* x_nhwc, T* y_nhwc,
                        bool count_include_pad);

// Written as a gather: each dx pixel sums dy/divisor over the windows that cover
// it, so rows are independent (no zeroing, no races) and results deterministic.
template <typename T>
void avg_pool2d_backward(const Pool2dShape& shape, const T* dy_nhwc, T* dx_nhwc,
                         bool count_include_pad);

}  // namespace fastnn::cpu
