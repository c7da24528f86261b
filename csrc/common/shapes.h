// The window arithmetic of convolution and pooling along one axis, written once for
// the bindings (fastnn._C and fastnn._cuda: the output size, checked) and for the cpu
// and CUDA kernels (which cells a window holds, which windows hold a cell).
//
// A window of `kernel` taps `dilation` apart spans window_extent(kernel, dilation)
// cells; output o's window starts at cell o * stride - pad_before of the unpadded axis.
// The unchecked helpers are constexpr templates over the index type (int64_t on the
// cpu, int in the CUDA kernels), usable in device code, where they clamp with CUDA's
// min and max; on the host they use std::min and std::max, which the cpu kernels
// compiled to the same instructions before these helpers existed (GCC schedules the
// equivalent conditionals differently).  window_output_size and the
// checked sums and products throw std::invalid_argument (a ValueError in Python)
// naming the op.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef __CUDACC__
#define FASTNN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FASTNN_HOST_DEVICE inline
#endif

namespace fastnn {

// Cells one window spans: `kernel` taps `dilation` apart.
template <typename I>
FASTNN_HOST_DEVICE constexpr I window_extent(I kernel, I dilation) {
  return (kernel - 1) * dilation + 1;
}

// Windows of `extent` cells, `stride` apart, that fit in `cells` cells (0 when none does).
template <typename I>
FASTNN_HOST_DEVICE constexpr I windows_in(I cells, I extent, I stride) {
  return cells >= extent ? (cells - extent) / stride + 1 : 0;
}

// Cells that `windows` (>= 1) consecutive windows of `extent` cells, `stride` apart, cover.
template <typename I>
FASTNN_HOST_DEVICE constexpr I cells_of(I windows, I extent, I stride) {
  return (windows - 1) * stride + extent;
}

template <typename I>
struct IndexRange {
  I lo, hi;  // [lo, hi)
};

// The real (unpadded) cells [lo, hi) of output o's window of `kernel` adjacent cells,
// on an axis of `size` cells.
template <typename I>
FASTNN_HOST_DEVICE constexpr IndexRange<I> window_cells(I o, I stride, I pad, I kernel, I size) {
  const I start = o * stride - pad;
#ifdef __CUDA_ARCH__  // CUDA's min and max on the device; std:: on the host (see the top)
  return {max(start, I(0)), min(start + kernel, size)};
#else
  return {std::max<I>(start, 0), std::min<I>(start + kernel, size)};
#endif
}

// The outputs [lo, hi) (of `outputs`) whose windows of `kernel` adjacent cells hold
// input cell i: window o holds i iff o * stride lies in [i + pad - kernel + 1, i + pad].
template <typename I>
FASTNN_HOST_DEVICE constexpr IndexRange<I> windows_holding(I i, I stride, I pad, I kernel, I outputs) {
  const I first = i + pad - kernel + 1;
  const I lo = first <= 0 ? I(0) : (first + stride - 1) / stride;
#ifdef __CUDA_ARCH__
  return {lo, min((i + pad) / stride + 1, outputs)};
#else
  return {lo, std::min<I>((i + pad) / stride + 1, outputs)};
#endif
}

// a + b and a * b of non-negative sizes, or std::invalid_argument naming what overflowed.
inline int64_t checked_add(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw std::invalid_argument(std::string(op) + ": " + what + " overflows int64");
  return r;
}
inline int64_t checked_mul(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw std::invalid_argument(std::string(op) + ": " + what + " overflows int64");
  return r;
}

// Output length of a window of `kernel` (>= 1) taps `dilation` apart at `stride`, over
// `size` cells padded by pad_before and pad_after: what the bindings recompute from the
// inputs, never taking it from an output buffer.  std::invalid_argument when a sum
// overflows or the window does not fit.
inline int64_t window_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t pad_before,
                                  int64_t pad_after, int64_t dilation, const char* op, const char* axis) {
  const int64_t padded = checked_add(checked_add(size, pad_before, op, "padded size"), pad_after, op, "padded size");
  const int64_t extent =
      checked_add(checked_mul(dilation, kernel - 1, op, "dilated kernel"), 1, op, "dilated kernel");
  if (extent > padded) {
    throw std::invalid_argument(std::string(op) + ": the " + std::to_string(extent) + "-cell window does not fit the " +
                                std::to_string(padded) + " padded " + axis + " cells");
  }
  return windows_in(padded, extent, stride);
}

}  // namespace fastnn
