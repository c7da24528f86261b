// Convolution on NHWC images and HWIO weights: the choice between four
// algorithms, per shape and pass (measured on the seed network; see the
// constants below), each in its own file (conv2d_algorithms.h).
//
//  * Direct kernels (conv2d_direct.cpp) for short patches, kh*kw*in_c <= 72 (a
//    first layer): forward and backward-weights; the forward of narrow
//    outputs (<= 16 float channels) with few input channels (LeNet's second);
//    and the backward-data of narrow inputs at stride 1, as a forward over dy.
//  * Winograd F(4x4, 3x3) or F(2x2, 3x3) for 3x3 stride-1 undilated
//    convolutions with >= 16 channels each way (where the tile count and the
//    transformed weights' size allow): forward, backward-data (a forward over
//    dy) and, as F(3x3, 4x4) or F(3x3, 2x2), backward-weights (conv2d_winograd.cpp).
//    Dilated ones whose sizes and padding divide by the dilation get there as
//    their phases: d_h x d_w undilated convolutions in one batch (below).
//  * Indirect GEMM for >= 16 channels per tap: a table of run pointers (a
//    pixel's channel vector per kernel tap, or a zero run for padding) feeds
//    the GEMM's register tiles directly (gemm_kernels.h), with no im2col copy
//    and no col2im scatter.  Forward and backward-weights at any stride,
//    backward-data at stride 1 (a forward-like pass over dy) (conv2d_indirect.cpp).
//    Fewer channels with a longer patch (a 7x7 stem, LeNet's second layer) take
//    kernel rows as runs instead: forward at any stride, backward-weights at
//    stride_w 1.
//  * Blocked im2col + GEMM for the rest, every block on one thread
//    (conv2d_im2col.cpp); for a backward-weights whose per-thread partial
//    gradients would outgrow L2, one threaded GEMM per block instead.
//
// A 1x1 convolution with stride 1 and no padding is a plain GEMM on x.
#include "cpu/conv2d.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/align.h"
#include "common/parallel.h"
#include "cpu/conv2d_algorithms.h"
#include "cpu/conv2d_direct.h"
#include "cpu/machine.h"

namespace fastnn::cpu {
namespace {

// The indirect path needs a few channels per tap to keep its inner loop busy;
// 1x1 stride-1 convolutions are plain GEMMs on x and skip it.
constexpr int64_t kMinIndirectRun = 16;

// The run-offset table covers one image's pixels x taps (8 bytes each): for very
// large images it would outgrow any cache and the workspace, so those keep the
// im2col path, whose workspace is bounded by its block size.
constexpr int64_t kMaxOffsetTableBytes = int64_t(16) << 20;

bool offsets_fit(int64_t pixels, const Conv2dShape& s) {
  return pixels * s.kernel_h * s.kernel_w * int64_t(sizeof(int64_t)) <= kMaxOffsetTableBytes;
}

// Forward and backward-weights read the same runs (forward's taps of each
// output pixel), so one test serves both.
bool use_indirect_forward_or_weights(const Conv2dShape& s) {
  return s.in_c >= kMinIndirectRun && !is_pointwise(s) && offsets_fit(s.out_h * s.out_w, s);
}

// Backward-data's output rows are in_c wide: a narrow one would leave most lanes
// of the micro-tile idle (1 of 16 for a first layer: 3.5 ms against im2col's 1.1).
bool use_indirect_backward_data(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.out_c >= kMinIndirectRun && s.in_c >= kMinIndirectRun &&
         !is_pointwise(s) && offsets_fit(s.in_h * s.in_w, s);
}

// Backward-data at stride 1 is a forward convolution over dy: dx = conv(dy,
// w flipped in h and w with in/out swapped), padded by the window's extent less
// the forward's padding (the far side's follows from the sizes: the direct
// kernels read anything outside dy as zero).
Conv2dShape backward_data_as_forward(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.in_h = s.out_h;
  t.in_w = s.out_w;
  t.in_c = s.out_c;
  t.out_h = s.in_h;
  t.out_w = s.in_w;
  t.out_c = s.in_c;
  t.pad_top = (s.kernel_h - 1) * s.dilation_h - s.pad_top;
  t.pad_left = (s.kernel_w - 1) * s.dilation_w - s.pad_left;
  return t;
}

// Narrow input channels (LeNet's 6) with few output channels: the narrow direct
// forward over dy.  LeNet's 6->16 5x5 layer, batch 64, 1 thread, Zen 4: 0.75 ms
// against im2col + col2im's 1.40.
template <typename T>
bool use_direct_backward_data(const Conv2dShape& s) {
  if (s.stride_h != 1 || s.stride_w != 1 || s.pad_top > (s.kernel_h - 1) * s.dilation_h ||
      s.pad_left > (s.kernel_w - 1) * s.dilation_w || use_indirect_backward_data(s)) {
    return false;
  }
  const Conv2dShape t = backward_data_as_forward(s);
  return direct_conv_is_narrow<T>(t) && t.in_c <= kMinIndirectRun;
}

// 3x3 at stride 1 with >= 16 channels each way: Winograd over dy (the padding
// stays within the window, so the transposed problem is a "same"-like forward).
template <typename T>
bool use_winograd_backward_data(const Conv2dShape& s, int threads) {
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_top <= (s.kernel_h - 1) * s.dilation_h &&
         s.pad_left <= (s.kernel_w - 1) * s.dilation_w &&
         use_winograd_forward<T>(backward_data_as_forward(s), threads);
}

// Dilation as phases.  At stride 1, output row oh = d*a + p of a window with
// dilation d reads input rows oh - pad + d*i = d*(a - pad/d + i) + p: rows of the
// same phase p only, taps one apart.  So where the sizes and the padding divide by
// the dilation, phase (p, q) of y is an undilated convolution over phase (p, q) of
// x with the padding divided by d (the far side's follows, as it does from every
// size), and the d_h x d_w phases of every image stack into one batch d_h * d_w
// times larger.  Splitting x and merging y cost a copy each; they pay where the
// undilated problem runs Winograd.  3x3 with dilation 2, "same", 2 threads, Intel
// Xeon model 167 (2 MiB L2), against the indirect GEMM (forward / backward-data /
// backward-weights): 64->64 at 32x32, batch 32, 6.53 -> 5.03 / 6.57 -> 4.70 / 8.72
// -> 4.42 ms; 128->128 at 28x28, batch 8, 4.88 -> 3.46 / 4.97 -> 3.38 / 6.36 -> 3.62.
// The copies cost ~0.4 ms each on the first (the undilated layer takes 2.67 ms).
bool splits_into_phases(const Conv2dShape& s) {
  return (s.dilation_h > 1 || s.dilation_w > 1) && s.stride_h == 1 && s.stride_w == 1 &&
         s.in_h % s.dilation_h == 0 && s.in_w % s.dilation_w == 0 && s.out_h % s.dilation_h == 0 &&
         s.out_w % s.dilation_w == 0 && s.pad_top % s.dilation_h == 0 && s.pad_left % s.dilation_w == 0;
}

Conv2dShape phase_shape(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.batch = s.batch * s.dilation_h * s.dilation_w;
  t.in_h = s.in_h / s.dilation_h;
  t.in_w = s.in_w / s.dilation_w;
  t.out_h = s.out_h / s.dilation_h;
  t.out_w = s.out_w / s.dilation_w;
  t.pad_top = s.pad_top / s.dilation_h;
  t.pad_left = s.pad_left / s.dilation_w;
  t.dilation_h = t.dilation_w = 1;
  return t;
}

// Phase (p, q) of image b of an NHWC batch (rows p, p + dh, ..., columns q, q + dw,
// ...) is image (p * dw + q) * batch + b of the phases' batch.  Calls
// move(full_offset, phase_offset) for every pixel, one task per row of the full
// batch (a contiguous w x c run).
template <typename Move>
void for_each_phase_pixel(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t dh, int64_t dw, int threads,
                          const Move& move) {
  const int64_t hp = h / dh, wp = w / dw;
  parallel_for(0, batch * h, 8, threads, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / h, row = r % h;
      for (int64_t q = 0; q < dw; ++q) {
        const int64_t phase_row = (((row % dh) * dw + q) * batch + b) * hp + row / dh;
        for (int64_t j = 0; j < wp; ++j) move((r * w + j * dw + q) * c, (phase_row * wp + j) * c);
      }
    }
  });
}

template <typename T>
void split_phases(const T* full, int64_t batch, int64_t h, int64_t w, int64_t c, int64_t dh, int64_t dw,
                  T* phases, int threads) {
  for_each_phase_pixel(batch, h, w, c, dh, dw, threads,
                       [&](int64_t f, int64_t p) { std::copy_n(full + f, c, phases + p); });
}

template <typename T>
void merge_phases(const T* phases, int64_t batch, int64_t h, int64_t w, int64_t c, int64_t dh, int64_t dw,
                  T* full, int threads) {
  for_each_phase_pixel(batch, h, w, c, dh, dw, threads,
                       [&](int64_t f, int64_t p) { std::copy_n(phases + p, c, full + f); });
}

template <typename T>
size_t image_bytes(int64_t batch, int64_t h, int64_t w, int64_t c) {
  return align_up(static_cast<size_t>(batch * h * w * c) * sizeof(T));
}

template <typename T>
bool use_phases_forward(const Conv2dShape& s, int threads) {
  return splits_into_phases(s) && use_winograd_forward<T>(phase_shape(s), threads);
}

template <typename T>
bool use_phases_backward_data(const Conv2dShape& s, int threads) {
  return splits_into_phases(s) && use_winograd_backward_data<T>(phase_shape(s), threads);
}

template <typename T>
bool use_phases_backward_weights(const Conv2dShape& s) {
  return splits_into_phases(s) && use_winograd_backward_weights<T>(phase_shape(s));
}

// The three passes over phases: split the inputs, run the undilated pass on the
// phases' batch, merge its output (backward-weights' dw needs no merge).  The
// workspace holds the split inputs and outputs, then the undilated pass's own.
template <typename T>
T* workspace_at(void* workspace, size_t offset) {
  return static_cast<T*>(static_cast<void*>(static_cast<unsigned char*>(workspace) + offset));
}

template <typename T>
size_t phases_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  return image_bytes<T>(s.batch, s.in_h, s.in_w, s.in_c) + image_bytes<T>(s.batch, s.out_h, s.out_w, s.out_c) +
         conv2d_forward_workspace_bytes<T>(phase_shape(s), threads);
}

template <typename T>
size_t phases_backward_data_workspace_bytes(const Conv2dShape& s, int threads) {
  return image_bytes<T>(s.batch, s.out_h, s.out_w, s.out_c) + image_bytes<T>(s.batch, s.in_h, s.in_w, s.in_c) +
         conv2d_backward_data_workspace_bytes<T>(phase_shape(s), threads);
}

template <typename T>
size_t phases_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  return image_bytes<T>(s.batch, s.out_h, s.out_w, s.out_c) + image_bytes<T>(s.batch, s.in_h, s.in_w, s.in_c) +
         conv2d_backward_weights_workspace_bytes<T>(phase_shape(s), threads);
}

template <typename T>
void phases_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                    T* y_nhwc, void* workspace, size_t workspace_bytes, int threads) {
  const size_t x_bytes = image_bytes<T>(s.batch, s.in_h, s.in_w, s.in_c);
  const size_t used = x_bytes + image_bytes<T>(s.batch, s.out_h, s.out_w, s.out_c);
  T* x_phases = workspace_at<T>(workspace, 0);
  T* y_phases = workspace_at<T>(workspace, x_bytes);
  split_phases(x_nhwc, s.batch, s.in_h, s.in_w, s.in_c, s.dilation_h, s.dilation_w, x_phases, threads);
  conv2d_forward(phase_shape(s), static_cast<const T*>(x_phases), w_hwio, bias, act, y_phases,
                 workspace_at<T>(workspace, used), workspace_bytes - used, threads);
  merge_phases(static_cast<const T*>(y_phases), s.batch, s.out_h, s.out_w, s.out_c, s.dilation_h, s.dilation_w,
               y_nhwc, threads);
}

template <typename T>
void phases_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                          size_t workspace_bytes, int threads) {
  const size_t dy_bytes = image_bytes<T>(s.batch, s.out_h, s.out_w, s.out_c);
  const size_t used = dy_bytes + image_bytes<T>(s.batch, s.in_h, s.in_w, s.in_c);
  T* dy_phases = workspace_at<T>(workspace, 0);
  T* dx_phases = workspace_at<T>(workspace, dy_bytes);
  split_phases(dy_nhwc, s.batch, s.out_h, s.out_w, s.out_c, s.dilation_h, s.dilation_w, dy_phases, threads);
  conv2d_backward_data(phase_shape(s), static_cast<const T*>(dy_phases), w_hwio, dx_phases,
                       workspace_at<T>(workspace, used), workspace_bytes - used, threads);
  merge_phases(static_cast<const T*>(dx_phases), s.batch, s.in_h, s.in_w, s.in_c, s.dilation_h, s.dilation_w,
               dx_nhwc, threads);
}

template <typename T>
void phases_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio, void* workspace,
                             size_t workspace_bytes, int threads) {
  const size_t dy_bytes = image_bytes<T>(s.batch, s.out_h, s.out_w, s.out_c);
  const size_t used = dy_bytes + image_bytes<T>(s.batch, s.in_h, s.in_w, s.in_c);
  T* dy_phases = workspace_at<T>(workspace, 0);
  T* x_phases = workspace_at<T>(workspace, dy_bytes);
  split_phases(dy_nhwc, s.batch, s.out_h, s.out_w, s.out_c, s.dilation_h, s.dilation_w, dy_phases, threads);
  split_phases(x_nhwc, s.batch, s.in_h, s.in_w, s.in_c, s.dilation_h, s.dilation_w, x_phases, threads);
  conv2d_backward_weights(phase_shape(s), static_cast<const T*>(dy_phases), static_cast<const T*>(x_phases),
                          dw_hwio, workspace_at<T>(workspace, used), workspace_bytes - used, threads);
}

template <typename T>
size_t flipped_weights_bytes(const Conv2dShape& s) {
  return align_up(static_cast<size_t>(s.kernel_h * s.kernel_w * s.in_c * s.out_c) * sizeof(T));
}

// w_flipped[i][j][o][c] = w[kh-1-i][kw-1-j][c][o]: per tap (flipping both axes
// reverses the tap order) a transpose, through 16 x 16 blocks that read and write
// whole rows, taps and row blocks over the threads.  For the direct kernels'
// backward-data; Winograd's turns the weights inside its own transform.
template <typename T>
void flip_weights(const Conv2dShape& s, const T* w_hwio, T* w_flipped, int threads) {
  constexpr int64_t kBlock = 16;
  const int64_t taps = s.kernel_h * s.kernel_w, row_blocks = (s.in_c + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / (kBlock * s.out_c));
  parallel_for(0, taps * row_blocks, grain, threads, [&](int64_t lo, int64_t hi) {
    T block[kBlock][kBlock];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t tap = task / row_blocks, c0 = task % row_blocks * kBlock;
      const int64_t rows = std::min(s.in_c - c0, kBlock);
      const T* src = w_hwio + (taps - 1 - tap) * s.in_c * s.out_c + c0 * s.out_c;
      T* dst = w_flipped + tap * s.out_c * s.in_c + c0;
      for (int64_t o0 = 0; o0 < s.out_c; o0 += kBlock) {
        const int64_t cols = std::min(s.out_c - o0, kBlock);
        for (int64_t c = 0; c < rows; ++c) {
          for (int64_t o = 0; o < cols; ++o) block[o][c] = src[c * s.out_c + o0 + o];
        }
        for (int64_t o = 0; o < cols; ++o) std::copy_n(block[o], rows, dst + (o0 + o) * s.in_c);
      }
    }
  });
}

}  // namespace

void require_workspace(size_t have, size_t need, const char* op) {
  if (have < need) {
    throw std::invalid_argument(std::string(op) + ": workspace of " + std::to_string(have) + " bytes, need " +
                                std::to_string(need));
  }
}

// Forward and backward-weights of a convolution with a short patch (few input
// channels: a first layer) go to the direct kernels of conv2d_direct.h; K =
// kh*kw*in_c is far too short a GEMM inner dimension.  Measured (batch 64,
// relu, 1 thread, AVX-512, best of 60; ms, direct vs im2col+GEMM, fwd / bwd_w):
//   28x28x1->32 3x3 (K 9):   0.38 vs 2.35 / 0.29 vs 3.04
//   28x28x3->32 3x3 (K 27):  0.69 vs 3.13 / 0.69 vs 3.87
//   28x28x8->32 3x3 (K 72):  1.60 vs 4.92 / 1.54 vs 5.35
//   14x14x8->64 3x3 (K 72):  0.95 vs 1.20 / 0.83 vs 1.29
//   14x14x16->64 3x3 (K 144): 1.95 vs 1.87 / 1.67 vs 1.95  (break-even)
//   14x14x32->64 3x3 (K 288): 4.10 vs 3.63 / 3.28 vs 3.44
// The direct kernels reach ~120 GFLOP/s once K is a few dozen, so the cut sits
// at half the break-even: the GEMM gains with K, the direct path does not.
// Backward-data stays on im2col + GEMM (a first layer needs none), but for
// narrow inputs at stride 1 (use_direct_backward_data).
//
// Narrow outputs (conv2d_direct.h: out_c at most half a channel block) with
// fewer channels than the indirect path needs run the direct forward whatever
// the patch: LeNet's 6->16 5x5 layer (150 taps, batch 64, 1 thread, Zen 4) takes
// 0.55 ms against im2col's 1.22.  Its backward-weights does not gain (1.05 ms
// against 0.83: on 10x10 outputs the accumulators are reloaded every 10 pixel
// vectors), so that pass keeps the patch rule.
constexpr int64_t kMaxDirectPatch = 72;  // e.g. 8 input channels x 3x3

// Few input channels and a patch longer than the direct kernels take: the indirect GEMM
// over kernel rows (conv2d_indirect.cpp), for runs (kernel_w * in_c) of 16 or more, and
// of 8 or more where the outputs are too wide for the narrow direct kernels.  Intel Xeon
// model 167, 2 threads, float32, forward, against the narrow direct kernels or im2col:
//   LeNet-5's 6->16 5x5 at 14x14, batch 32:            0.147 -> 0.079 ms
//   8->32 5x5 "same" at 32x32, batch 32:               1.90 -> 1.42
//   ResNet's 7x7 3->64 stem, stride 2, batch 1 / 8:    1.03 -> 0.81 / 7.8 -> 6.6
//   3->32 5x5 "same" at 32x32, batch 32 (run 15):      1.03 -> 0.63
//   1->32 9x9 "same" at 32x32, batch 16 (run 9):       1.20 -> 0.35
//   2->16 7x7 "same" at 32x32, batch 16 (narrow):      0.215 direct, 0.275 rows
// (With a serial table of run offsets per output pixel the stem had been 1.00 -> 0.96
// and 12.8 -> 14.0 on an earlier host.)  Patches of 72 or fewer keep the direct
// kernels: rows ran 0.74-1.28x of them there (CIFAR's 3->64 3x3 1.05x, the seed's
// 1->32 0.76x).
template <typename T>
bool use_indirect_rows_forward(const Conv2dShape& s) {
  if (s.in_c >= kMinIndirectRun || s.dilation_w != 1 || is_pointwise(s) || patch_size(s) <= kMaxDirectPatch ||
      !offsets_fit(s.out_h * s.out_w, s)) {  // kernel_h runs a pixel: within the per-tap table's bound
    return false;
  }
  const int64_t run = s.kernel_w * s.in_c;
  return run >= kMinIndirectRun || (run >= 8 && !direct_conv_is_narrow<T>(s));
}

// ... and backward-weights on the same runs at stride_w 1, against im2col: 8->32 5x5
// "same" at 32x32, batch 32, 2.09 -> 1.72 ms; LeNet-5's 6->16 level (0.108 ms); 3->32 5x5
// 1.20 -> 1.05; 1->32 9x9 1.23 -> 0.52.  The stem at stride 2 keeps im2col: 1.16 -> 1.24
// ms at batch 1, 9.5 -> 10.3 at batch 8.
template <typename T>
bool use_indirect_rows_backward_weights(const Conv2dShape& s) {
  return use_indirect_rows_forward<T>(s) && s.stride_w == 1;
}

template <typename T>
bool use_direct_conv(const Conv2dShape& s) {
  if (use_indirect_rows_forward<T>(s)) return false;  // and so the fused pool composes conv2d and the pool
  return patch_size(s) <= kMaxDirectPatch || (direct_conv_is_narrow<T>(s) && s.in_c < kMinIndirectRun);
}

bool use_direct_conv_backward_weights(const Conv2dShape& s) { return patch_size(s) <= kMaxDirectPatch; }

// Backward-weights where the threads' partial weight gradients together outgrow a
// core's L2: one threaded GEMM per block of rows, no partials (conv2d_im2col.cpp).
// Intel Xeon (2 MiB L2), 2 threads, against the indirect path: ResNet-18's 512->512 at
// 7x7, batch 32 (9.4 MB of dw per thread) 39.5 -> 19.7 ms, PyTorch 21.3; 256->256 at
// 14x14, batch 1, 1.28 -> 0.80 ms, PyTorch 0.92; 64->128 stride 2 (0.3 MB) 0.41 ->
// 0.44 ms, so smaller gradients keep their paths.  Winograd's shapes are checked first.
template <typename T>
bool use_shared_backward_weights(const Conv2dShape& s, int threads) {
  const int64_t dw_bytes = patch_size(s) * s.out_c * static_cast<int64_t>(sizeof(T));
  return dw_bytes * threads > cache_sizes().l2;
}

void check_conv2d_shape(const Conv2dShape& s) {
  const int64_t dims[] = {s.batch, s.in_h, s.in_w, s.in_c, s.kernel_h, s.kernel_w, s.out_c, s.out_h, s.out_w};
  for (int64_t d : dims) {
    if (d < 0) throw std::invalid_argument("conv2d: negative size");
  }
  if (s.stride_h < 1 || s.stride_w < 1 || s.dilation_h < 1 || s.dilation_w < 1 || s.pad_top < 0 || s.pad_left < 0) {
    throw std::invalid_argument("conv2d: stride and dilation must be >= 1 and padding >= 0");
  }
  if (s.kernel_h < 1 || s.kernel_w < 1 || s.in_c < 1 || s.out_c < 1) {
    throw std::invalid_argument("conv2d: empty kernel or channels");
  }
  // Any out_h/out_w is memory-safe: im2col and col2im bounds-check every tap
  // against the input, and the binding checks y/dy against out_h x out_w.
  if (s.out_h < 1 || s.out_w < 1) throw std::invalid_argument("conv2d: empty output");
}

template <typename T>
size_t conv2d_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  if (use_indirect_rows_forward<T>(s)) return indirect_rows_forward_workspace_bytes<T>(s, threads);
  if (use_direct_conv<T>(s)) return conv2d_direct_forward_workspace_bytes<T>(s, threads);
  if (use_phases_forward<T>(s, threads)) return phases_forward_workspace_bytes<T>(s, threads);
  if (use_winograd_forward<T>(s, threads)) return winograd_forward_workspace_bytes<T>(s, threads);
  if (use_indirect_forward_or_weights(s)) return indirect_forward_workspace_bytes<T>(s, threads);
  return im2col_forward_workspace_bytes<T>(s, threads);
}

template <typename T>
size_t conv2d_backward_data_workspace_bytes(const Conv2dShape& s, int threads) {
  if (use_phases_backward_data<T>(s, threads)) return phases_backward_data_workspace_bytes<T>(s, threads);
  if (use_winograd_backward_data<T>(s, threads)) {
    return winograd_forward_workspace_bytes<T>(backward_data_as_forward(s), threads);
  }
  if (use_direct_backward_data<T>(s)) {
    return flipped_weights_bytes<T>(s) + conv2d_direct_forward_workspace_bytes<T>(backward_data_as_forward(s), threads);
  }
  if (use_indirect_backward_data(s)) return indirect_backward_data_workspace_bytes<T>(s, threads);
  return im2col_backward_data_workspace_bytes<T>(s, threads);
}

template <typename T>
size_t conv2d_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  if (use_direct_conv_backward_weights(s)) return conv2d_direct_backward_weights_workspace_bytes<T>(s, threads);
  if (use_phases_backward_weights<T>(s)) return phases_backward_weights_workspace_bytes<T>(s, threads);
  if (use_winograd_backward_weights<T>(s)) return winograd_backward_weights_workspace_bytes<T>(s, threads);
  if (use_shared_backward_weights<T>(s, threads)) return im2col_shared_backward_weights_workspace_bytes<T>(s, threads);
  if (use_indirect_rows_backward_weights<T>(s)) return indirect_rows_backward_weights_workspace_bytes<T>(s, threads);
  if (use_indirect_forward_or_weights(s)) return indirect_backward_weights_workspace_bytes<T>(s, threads);
  return im2col_backward_weights_workspace_bytes<T>(s, threads);
}

template <typename T>
void conv2d_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                    T* y_nhwc, void* workspace, size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  threads = std::max(threads, 1);
  if (use_indirect_rows_forward<T>(s)) {
    require_workspace(workspace_bytes, conv2d_forward_workspace_bytes<T>(s, threads), "conv2d");
    indirect_rows_forward(s, x_nhwc, w_hwio, bias, act, y_nhwc, workspace, threads);
    return;
  }
  if (use_direct_conv<T>(s)) {
    conv2d_direct_forward(s, x_nhwc, w_hwio, bias, act, y_nhwc, workspace, workspace_bytes, threads);
    return;
  }
  require_workspace(workspace_bytes, conv2d_forward_workspace_bytes<T>(s, threads), "conv2d");
  if (use_phases_forward<T>(s, threads)) {
    phases_forward(s, x_nhwc, w_hwio, bias, act, y_nhwc, workspace, workspace_bytes, threads);
  } else if (use_winograd_forward<T>(s, threads)) {
    winograd_forward(s, x_nhwc, w_hwio, bias, act, y_nhwc, workspace, threads);
  } else if (use_indirect_forward_or_weights(s)) {
    indirect_forward(s, x_nhwc, w_hwio, bias, act, y_nhwc, workspace, threads);
  } else {
    im2col_forward(s, x_nhwc, w_hwio, bias, act, y_nhwc, workspace, threads);
  }
}

template <typename T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                          size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  threads = std::max(threads, 1);
  require_workspace(workspace_bytes, conv2d_backward_data_workspace_bytes<T>(s, threads), "conv2d_backward_data");
  if (use_phases_backward_data<T>(s, threads)) {
    phases_backward_data(s, dy_nhwc, w_hwio, dx_nhwc, workspace, workspace_bytes, threads);
    return;
  }
  if (use_winograd_backward_data<T>(s, threads)) {
    winograd_backward_data(backward_data_as_forward(s), dy_nhwc, w_hwio, dx_nhwc, workspace, threads);
    return;
  }
  if (use_direct_backward_data<T>(s)) {
    T* w_flipped = static_cast<T*>(workspace);
    flip_weights(s, w_hwio, w_flipped, threads);
    const size_t used = flipped_weights_bytes<T>(s);
    conv2d_direct_forward(backward_data_as_forward(s), dy_nhwc, w_flipped, static_cast<const T*>(nullptr),
                          Activation::none, dx_nhwc, static_cast<unsigned char*>(workspace) + used,
                          workspace_bytes - used, threads);
    return;
  }
  if (use_indirect_backward_data(s)) {
    indirect_backward_data(s, dy_nhwc, w_hwio, dx_nhwc, workspace, threads);
  } else {
    im2col_backward_data(s, dy_nhwc, w_hwio, dx_nhwc, workspace, threads);
  }
}

template <typename T>
void conv2d_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio, void* workspace,
                             size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  threads = std::max(threads, 1);
  if (use_direct_conv_backward_weights(s)) {
    conv2d_direct_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, workspace_bytes, threads);
    return;
  }
  require_workspace(workspace_bytes, conv2d_backward_weights_workspace_bytes<T>(s, threads),
                    "conv2d_backward_weights");
  if (use_phases_backward_weights<T>(s)) {
    phases_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, workspace_bytes, threads);
  } else if (use_winograd_backward_weights<T>(s)) {
    winograd_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, threads);
  } else if (use_shared_backward_weights<T>(s, threads)) {
    im2col_shared_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, threads);
  } else if (use_indirect_rows_backward_weights<T>(s)) {
    indirect_rows_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, threads);
  } else if (use_indirect_forward_or_weights(s)) {
    indirect_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, threads);
  } else {
    im2col_backward_weights(s, dy_nhwc, x_nhwc, dw_hwio, workspace, threads);
  }
}

#define FASTNN_INSTANTIATE(T)                                                                              \
  template bool use_direct_conv<T>(const Conv2dShape&);                                                    \
  template size_t conv2d_forward_workspace_bytes<T>(const Conv2dShape&, int);                              \
  template size_t conv2d_backward_data_workspace_bytes<T>(const Conv2dShape&, int);                        \
  template size_t conv2d_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                     \
  template void conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*, void*, \
                                  size_t, int);                                                            \
  template void conv2d_backward_data<T>(const Conv2dShape&, const T*, const T*, T*, void*, size_t, int);   \
  template void conv2d_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, size_t, int);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)

}  // namespace fastnn::cpu
