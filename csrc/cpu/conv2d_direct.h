// Direct convolution for layers with a short patch (few input channels: a
// network's first layer), where im2col + GEMM spends its time on a K = 9..27
// inner dimension far too short for a GEMM.  NHWC images, HWIO weights; same
// contract as conv2d_forward / conv2d_backward_weights in conv2d.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/activations.h"
#include "cpu/conv2d.h"

namespace fastnn::cpu {

// Output channels are processed in blocks of 128 bytes (32 floats, 16
// doubles) on every ISA; the packed weights and bias are zero-padded to it.
template <typename T>
constexpr int64_t kDirectOcBlock = 128 / static_cast<int64_t>(sizeof(T));

// What the per-ISA row kernels need besides the shape.  The output is cut
// into tiles of at most band_rows x tile_w pixels (within one image); each
// tile first copies the input it reads into a zero-padded buffer (padded_w
// columns, so every tap of every output pixel is in range), and tap t = (i, j,
// c) of the pixel whose window starts at buffer offset p reads p +
// tap_offsets[t], in the order of the rows of w (HWIO).  The tile is sized so
// that buffer stays within kDirectPadBytes (a whole image, for the images this
// path is for); one output pixel's window is the least it holds.
// Narrow outputs (out_c at most half a channel block, stride_w 1: LeNet's 6- and
// 16-channel layers) put output pixels in the vector lanes instead of channels,
// so no lane computes a channel that does not exist: the tile's input is copied
// channel-planar ([c][row][pitch], pitch a whole number of vectors wider than
// the tile, zeros beyond it) and backward-weights copies dy planar too.
template <typename T>
constexpr bool direct_conv_is_narrow(const Conv2dShape& s) {
  return 2 * s.out_c <= kDirectOcBlock<T> && s.stride_w == 1;
}

struct DirectConvPlan {
  Conv2dShape shape;
  int64_t taps;            // kernel_h * kernel_w * in_c
  int64_t tile_w;          // output columns per tile
  int64_t band_rows;       // output rows per tile
  int64_t padded_w;        // (tile_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1
  int64_t padded_h;        // the same for band_rows
  int64_t oc_blocks;       // ceil(out_c / kDirectOcBlock)
  const int64_t* tap_offsets;
  // Narrow plans only: the planar rows' pitch (>= padded_w), and, for
  // backward-weights, dy's planar pitch and where its copy starts in the pad buffer.
  // backward-weights also keeps dw's per-lane partial sums there (one 64-byte
  // vector per tap and channel), summed across lanes once per chunk.
  bool narrow;
  int64_t pitch;
  int64_t dy_pitch;
  int64_t dy_offset;
  int64_t lanes_offset;
};

// The padded-input buffer of one chunk stays within this (unless one output
// pixel's window alone is larger).  A/B against a whole padded image per chunk
// (benchmarks/ab_native.py --cases direct, 1 and 2 threads): 28x28x1,
// 224x224x3 and 512x512x3 images within the machine's noise (+-6%); the
// 512x512 weight gradient ran 1.25-1.38x as fast in some runs, not in others.
constexpr int64_t kDirectPadBytes = int64_t(256) << 10;

template <typename T> size_t conv2d_direct_forward_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T> size_t conv2d_direct_backward_weights_workspace_bytes(const Conv2dShape& s, int threads);

// y = act(conv(x, w) + bias); bias may be null.
template <typename T>
void conv2d_direct_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                           T* y_nhwc, void* workspace, size_t workspace_bytes, int threads);
// Fused forward of conv + bias + relu + a 2x2 / stride-2 max-pool:
// y_pool (batch, out_h / 2, out_w / 2, out_c) and argmax, flat NHWC indices
// into the (batch, out_h, out_w, out_c) convolution output, which is never
// written (both as max_pool2d_forward gives them).  Only where
// conv2d_direct_fuses_max_pool: the direct path, and channel blocks that fit
// the pool's unrolled kernel; std::invalid_argument otherwise.
template <typename T> bool conv2d_direct_fuses_max_pool(const Conv2dShape& s);
template <typename T> size_t conv2d_direct_relu_max_pool_workspace_bytes(const Conv2dShape& s, int threads);
template <typename T>
void conv2d_direct_relu_max_pool(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias,
                                 T* y_pool_nhwc, int64_t* argmax, void* workspace, size_t workspace_bytes,
                                 int threads);
// dw = conv2d weight gradient (overwritten, not accumulated).
template <typename T>
void conv2d_direct_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    void* workspace, size_t workspace_bytes, int threads);

}  // namespace fastnn::cpu
