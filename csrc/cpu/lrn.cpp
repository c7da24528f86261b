// LRN entry points: split pixels into one task per thread, give each task its
// own padded rows of the caller's workspace, and run the kernel compiled for
// the selected ISA on it.
#include "cpu/lrn.h"

#include <algorithm>
#include <stdexcept>

#include "common/parallel.h"
#include "cpu/dispatch.h"
#include "cpu/lrn_table.h"

namespace fastnn::cpu {

// The selected ISA's LRN kernels, resolved once.
template <typename T>
static const LrnKernels<T>& lrn_kernels() {
  return resolve_kernel_table(&portable::lrn_kernel_table<T>, &avx2::lrn_kernel_table<T>,
                              &avx512::lrn_kernel_table<T>);
}

// A channel window wider than the row adds only zeros: clamp it.
static int64_t effective_radius(int64_t channels, int64_t depth_radius) {
  return std::min<int64_t>(depth_radius, std::max<int64_t>(channels - 1, 0));
}

// Each task's kLrnGroup padded rows are rounded up to whole 128-byte blocks (two
// cache lines, for the adjacent-line prefetcher), so the rows of different threads
// never share a line: with 32 channels a row is 168 bytes, and the false sharing
// of two threads writing neighbouring rows every pixel made 2 threads slower than
// 1 (seed LRN 128x14x14x32: 2.5 ms on 2 threads, 1.8 ms on 1).
template <typename T>
static int64_t row_size(int64_t channels, int64_t depth_radius) {
  constexpr int64_t kBlock = 128 / sizeof(T);
  const int64_t values = kLrnGroup * (channels + 2 * effective_radius(channels, depth_radius));
  return (values + kBlock - 1) / kBlock * kBlock;
}

// Below ~16K values per task a fork/join costs more than the work.
static int64_t task_count(int64_t pixels, int64_t channels, int team) {
  constexpr int64_t kGrainValues = 1 << 14;
  const int64_t by_size = (pixels * channels + kGrainValues - 1) / kGrainValues;
  return std::max<int64_t>(1, std::min<int64_t>({by_size, static_cast<int64_t>(team), pixels}));
}

template <typename T>
int64_t lrn_workspace_size(int64_t pixels, int64_t channels, int64_t depth_radius, int team) {
  return task_count(pixels, channels, team) * row_size<T>(channels, depth_radius);
}
template int64_t lrn_workspace_size<float>(int64_t, int64_t, int64_t, int);
template int64_t lrn_workspace_size<double>(int64_t, int64_t, int64_t, int);

// Calls fn(task_begin, task_end, padded_row) on disjoint pixel ranges in parallel.
template <typename T, typename F>
static void for_each_task(int64_t pixels, int64_t channels, int64_t depth_radius, T* workspace,
                          int64_t workspace_size, int team, const F& fn) {
  const int64_t row = row_size<T>(channels, depth_radius);
  if (pixels <= 0 || channels <= 0) return;
  if (workspace_size < row) throw std::invalid_argument("lrn: workspace smaller than one task's channel rows");
  const int64_t tasks = std::min(task_count(pixels, channels, team), workspace_size / row);
  parallel_for(0, tasks, 1, team, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) fn(pixels * t / tasks, pixels * (t + 1) / tasks, workspace + t * row);
  });
}

template <typename T>
void lrn_forward(const T* x, T* y, T* scale, int64_t pixels, int64_t channels, int64_t depth_radius, T bias,
                 T alpha, T beta, T* workspace, int64_t workspace_size, int team) {
  const auto forward_pixels = lrn_kernels<T>().forward_pixels;
  const int64_t radius = effective_radius(channels, depth_radius);
  for_each_task(pixels, channels, depth_radius, workspace, workspace_size, team,
                [&](int64_t begin, int64_t end, T* padded) {
    forward_pixels(x, y, scale, begin, end, channels, radius, bias, alpha, beta, padded);
  });
}

template <typename T>
void lrn_backward(const T* dy, const T* x, const T* y, const T* scale, T* dx, int64_t pixels, int64_t channels,
                  int64_t depth_radius, T alpha, T beta, T* workspace, int64_t workspace_size, int team) {
  const auto backward_pixels = lrn_kernels<T>().backward_pixels;
  const int64_t radius = effective_radius(channels, depth_radius);
  // Rounded to T once, as the reference does: t(2 * alpha * beta).
  const T two_alpha_beta = static_cast<T>(2.0 * static_cast<double>(alpha) * static_cast<double>(beta));
  for_each_task(pixels, channels, depth_radius, workspace, workspace_size, team,
                [&](int64_t begin, int64_t end, T* padded) {
    backward_pixels(dy, x, y, scale, dx, begin, end, channels, radius, two_alpha_beta, beta, padded);
  });
}

template void lrn_forward<float>(const float*, float*, float*, int64_t, int64_t, int64_t, float, float, float,
                                 float*, int64_t, int);
template void lrn_forward<double>(const double*, double*, double*, int64_t, int64_t, int64_t, double, double,
                                  double, double*, int64_t, int);
template void lrn_backward<float>(const float*, const float*, const float*, const float*, float*, int64_t,
                                  int64_t, int64_t, float, float, float*, int64_t, int);
template void lrn_backward<double>(const double*, const double*, const double*, const double*, double*,
                                   int64_t, int64_t, int64_t, double, double, double*, int64_t, int);

}  // namespace fastnn::cpu
