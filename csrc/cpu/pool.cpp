// Pooling entry points: split rows across threads (parallel_for over batch x
// rows, coarse enough that a chunk is worth a fork) and run the kernel
// compiled for the selected ISA on each chunk.  The max-pool backward is a
// scalar scatter-add (no gather/scatter ISA tricks pay off at these sizes) and
// lives here.
#include "cpu/pool.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/parallel.h"
#include "cpu/dispatch.h"
#include "cpu/pool_table.h"

namespace fastnn::cpu {

// The selected ISA's pooling kernels, resolved once.
template <typename T>
static const PoolKernels<T>& pool_kernels() {
  return resolve_kernel_table(&portable::pool_kernel_table<T>, &avx2::pool_kernel_table<T>,
                              &avx512::pool_kernel_table<T>);
}

// Rows per chunk so that a chunk reads at least ~32K values.
static int64_t row_grain(int64_t values_per_row) {
  constexpr int64_t kGrainValues = 1 << 15;
  return values_per_row <= 0 ? 1 : (kGrainValues + values_per_row - 1) / values_per_row;
}

// Every window must hold a real pixel (the max is seeded from the first one):
// an image with rows and columns, and pad < kernel.  The bindings check this
// too; the kernels refuse it on their own.
static void check_pool_shape(const Pool2dShape& s, const char* op) {
  if (s.height < 1 || s.width < 1 || s.batch < 0 || s.channels < 0) {
    throw std::invalid_argument(std::string(op) + ": the image must have at least one row and one column");
  }
  if (s.kernel_h < 1 || s.kernel_w < 1 || s.stride_h < 1 || s.stride_w < 1 || s.pad_h < 0 || s.pad_w < 0 ||
      s.pad_h >= s.kernel_h || s.pad_w >= s.kernel_w) {
    throw std::invalid_argument(std::string(op) + ": need kernel >= 1, stride >= 1 and 0 <= padding < kernel");
  }
  if (s.out_height < 0 || s.out_width < 0 || (s.out_height - 1) * s.stride_h - s.pad_h >= s.height ||
      (s.out_width - 1) * s.stride_w - s.pad_w >= s.width) {
    throw std::invalid_argument(std::string(op) + ": the output is larger than the windows of the image");
  }
}

// The general kernel over all rows; `rows_kernel` is the table's int32 or int64 variant.
template <typename T, typename RowsKernel>
static void max_pool2d_general(const Pool2dShape& s, const T* x, T* y, int64_t* argmax, bool nchw,
                               RowsKernel rows_kernel) {
  const int64_t rows = s.batch * s.out_height;
  const int64_t grain = row_grain(s.out_width * s.channels * s.kernel_h * s.kernel_w);
  parallel_for(0, rows, grain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    rows_kernel(s, x, y, argmax, nchw, lo, hi);
  });
}

// 2x2, stride 2, no padding, and window offsets (a row of the image) that fit
// the data's lane width: max_pool2d_rows_2x2.
template <typename T>
bool max_pool2d_is_2x2(const Pool2dShape& s) {
  const int64_t max_offset = sizeof(T) == 4 ? INT32_MAX : INT64_MAX;
  return s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 &&
         s.pad_w == 0 && s.width * s.channels + s.channels <= max_offset &&
         s.height * s.width <= max_offset;
}

template <typename T>
void max_pool2d_2x2_rows(const Pool2dShape& s, const T* x_nhwc, T* y_nhwc, int64_t* argmax, int64_t index_base,
                         int64_t row_begin, int64_t row_end) {
  pool_kernels<T>().max_rows_2x2(s, x_nhwc, y_nhwc, argmax, false, index_base, row_begin, row_end);
}

template <typename T>
static void max_pool2d_2x2(const Pool2dShape& s, const T* x, T* y, int64_t* argmax, bool nchw) {
  const auto max_rows_2x2 = pool_kernels<T>().max_rows_2x2;
  const int64_t grain = row_grain(s.out_width * s.channels * 4);
  parallel_for(0, s.batch * s.out_height, grain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    max_rows_2x2(s, x, y, argmax, nchw, 0, lo, hi);
  });
}

template <typename T>
void max_pool2d_forward(const Pool2dShape& s, const T* x_nhwc, T* y_nhwc, int64_t* argmax, bool argmax_nchw) {
  check_pool_shape(s, "max_pool2d");
  if (max_pool2d_is_2x2<T>(s)) {
    max_pool2d_2x2<T>(s, x_nhwc, y_nhwc, argmax, argmax_nchw);
    return;
  }
  // float tracks the winning pixel as int32 (same lane width as the data) when
  // an image's pixel count fits; anything else uses int64.
  const PoolKernels<T>& kernels = pool_kernels<T>();
  if (sizeof(T) == 4 && s.height * s.width <= INT32_MAX) {
    max_pool2d_general(s, x_nhwc, y_nhwc, argmax, argmax_nchw, kernels.max_rows_int32);
  } else {
    max_pool2d_general(s, x_nhwc, y_nhwc, argmax, argmax_nchw, kernels.max_rows_int64);
  }
}

template <typename T>
void max_pool2d_backward(const T* dy, const int64_t* argmax, T* dx, int64_t batch, int64_t dy_per_batch,
                         int64_t dx_per_batch) {
  // Parallel over batch: an index produced by the forward points into its own
  // batch block, so threads never share a dx element.  Any other valid index
  // is left for a serial second pass; an invalid one raises after the join.
  std::atomic<bool> stray{false};
  const int64_t grain = row_grain(dx_per_batch + dy_per_batch);
  parallel_for(0, batch, grain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    bool local_stray = false;
    for (int64_t n = lo; n < hi; ++n) {
      T* dx_n = dx + n * dx_per_batch;
      const T* dy_n = dy + n * dy_per_batch;
      const int64_t* a_n = argmax + n * dy_per_batch;
      const int64_t base = n * dx_per_batch;
      std::memset(dx_n, 0, sizeof(T) * static_cast<size_t>(dx_per_batch));
      for (int64_t i = 0; i < dy_per_batch; ++i) {
        const int64_t k = a_n[i] - base;
        if (static_cast<uint64_t>(k) < static_cast<uint64_t>(dx_per_batch)) {
          dx_n[k] += dy_n[i];
        } else {
          local_stray = true;
        }
      }
    }
    if (local_stray) stray.store(true, std::memory_order_relaxed);
  });
  if (!stray.load()) return;
  const int64_t total = batch * dx_per_batch;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t i = n * dy_per_batch; i < (n + 1) * dy_per_batch; ++i) {
      const int64_t k = argmax[i];
      if (k >= n * dx_per_batch && k < (n + 1) * dx_per_batch) continue;  // done above
      if (k < 0 || k >= total) {
        throw std::invalid_argument("max_pool2d_backward: argmax holds " + std::to_string(k) +
                                    ", outside [0, " + std::to_string(total) + ")");
      }
      dx[k] += dy[i];
    }
  }
}

template <typename T>
void avg_pool2d_forward(const Pool2dShape& s, const T* x_nhwc, T* y_nhwc, bool count_include_pad) {
  check_pool_shape(s, "avg_pool2d");
  const auto avg_rows = pool_kernels<T>().avg_rows;
  const int64_t grain = row_grain(s.out_width * s.channels * s.kernel_h * s.kernel_w);
  parallel_for(0, s.batch * s.out_height, grain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    avg_rows(s, x_nhwc, y_nhwc, count_include_pad, lo, hi);
  });
}

template <typename T>
void avg_pool2d_backward(const Pool2dShape& s, const T* dy_nhwc, T* dx_nhwc, bool count_include_pad) {
  check_pool_shape(s, "avg_pool2d_backward");
  const auto avg_backward_rows = pool_kernels<T>().avg_backward_rows;
  const int64_t grain = row_grain(s.width * s.channels * s.kernel_h * s.kernel_w /
                                  std::max<int64_t>(1, s.stride_h * s.stride_w) + s.width * s.channels);
  parallel_for(0, s.batch * s.height, grain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    avg_backward_rows(s, dy_nhwc, dx_nhwc, count_include_pad, lo, hi);
  });
}

#define FASTNN_INSTANTIATE_POOL(T)                                                                  \
  template void max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, int64_t*, bool);            \
  template void max_pool2d_backward<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t);    \
  template void avg_pool2d_forward<T>(const Pool2dShape&, const T*, T*, bool);                      \
  template bool max_pool2d_is_2x2<T>(const Pool2dShape&);                                           \
  template void max_pool2d_2x2_rows<T>(const Pool2dShape&, const T*, T*, int64_t*, int64_t, int64_t, \
                                       int64_t);                                                    \
  template void avg_pool2d_backward<T>(const Pool2dShape&, const T*, T*, bool);
FASTNN_INSTANTIATE_POOL(float)
FASTNN_INSTANTIATE_POOL(double)
#undef FASTNN_INSTANTIATE_POOL

}  // namespace fastnn::cpu
