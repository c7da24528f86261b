// Sequence-op entry points: split the work across threads and run the kernels
// compiled for the selected ISA (seq_table.h) on each part.
//
// Row-wise ops (maxout, seq2col, gather_add) split their rows into contiguous
// chunks; a seq2col chunk finds the sequence of its first row by binary search
// in the offsets and walks on from there, so one long sequence parallelises
// as well as many short ones.  The ragged reductions split the sequences where
// their rows are balanced (a sequence weighs its rows plus one, its output
// row) and, when there are fewer sequences than threads, the columns into
// blocks of whole cache lines.  seq2col is copies (memcpy and memset per row);
// everything else runs a vectorised kernel.  Index errors are collected per
// part and the first in flat order is returned, after the join.
#include "cpu/seq.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "common/parallel.h"
#include "cpu/dispatch.h"
#include "cpu/seq_table.h"

namespace fastnn::cpu {

// The selected ISA's sequence kernels, resolved once.
template <typename T>
static const SeqKernels<T>& seq_kernels() {
  return resolve_kernel_table(&portable::seq_kernel_table<T>, &avx2::seq_kernel_table<T>,
                              &avx512::seq_kernel_table<T>);
}

// Below ~32K values a part costs less than a fork/join.
constexpr int64_t kGrainValues = 1 << 15;

static int64_t row_grain(int64_t values_per_row) {
  return values_per_row <= 0 ? kGrainValues : std::max<int64_t>(1, kGrainValues / values_per_row);
}

// first = min(first, position) over the parts (-1: none yet; a negative position is no error).
static void keep_first(std::atomic<int64_t>& first, int64_t position) {
  if (position < 0) return;
  int64_t seen = first.load(std::memory_order_relaxed);
  while ((seen < 0 || position < seen) &&
         !first.compare_exchange_weak(seen, position, std::memory_order_relaxed)) {
  }
}

// The sequence holding row `row` < offsets[batch]: the last b with offsets[b] <= row (never
// an empty one, whose successor starts at the same row).
static int64_t sequence_of(const int64_t* offsets, int64_t batch, int64_t row) {
  return std::upper_bound(offsets, offsets + batch + 1, row) - offsets - 1;
}

// Calls fn(b_begin, b_end, c_begin, c_end) on parts of sequences x columns, in parallel: see
// the top of the file.
template <typename T, typename F>
static void for_each_part(const int64_t* offsets, int64_t batch, int64_t cols, int team, const F& fn) {
  if (batch <= 0 || cols <= 0) return;
  const int64_t weight = offsets[batch] + batch;
  const int64_t tasks = chunk_count(weight > INT64_MAX / cols ? INT64_MAX : weight * cols, kGrainValues, team);
  const int64_t seq_parts = std::min(tasks, batch);
  constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
  const int64_t col_parts = std::max<int64_t>(1, std::min(tasks / seq_parts, (cols + kLine - 1) / kLine));
  const int64_t block = ((cols + col_parts - 1) / col_parts + kLine - 1) / kLine * kLine;
  // Part s begins at the first sequence b whose rows and output rows before it,
  // offsets[b] + b, reach s / seq_parts of the weight.
  const auto split = [&](int64_t s) -> int64_t {
    if (s <= 0) return 0;
    if (s >= seq_parts) return batch;
    const auto target = static_cast<int64_t>(static_cast<__int128>(weight) * s / seq_parts);
    int64_t lo = 0, hi = batch;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (offsets[mid] + mid < target) lo = mid + 1; else hi = mid;
    }
    return lo;
  };
  parallel_for(0, seq_parts * col_parts, 1, team, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t c0 = (t % col_parts) * block, c1 = std::min(cols, c0 + block);
      const int64_t s = t / col_parts;
      if (c0 < c1) fn(split(s), split(s + 1), c0, c1);
    }
  });
}

template <typename T>
void maxout_forward(const T* x, T* best, int32_t* which, int64_t units, int64_t pieces) {
  const auto kernel = seq_kernels<T>().maxout_units;
  parallel_for(0, units, row_grain(pieces + 2), get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(x, best, which, lo, hi, pieces);
  });
}

template <typename T>
int64_t maxout_backward(const T* dy, const int32_t* which, T* dx, int64_t units, int64_t pieces) {
  const auto kernel = seq_kernels<T>().maxout_backward_units;
  std::atomic<int64_t> first{-1};
  parallel_for(0, units, row_grain(pieces + 2), get_num_threads(), [&](int64_t lo, int64_t hi) {
    keep_first(first, kernel(dy, which, dx, lo, hi, pieces));
  });
  return first.load();
}

template <typename T>
void seq2col_forward(const T* x, T* cols, const int64_t* offsets, int64_t batch, int64_t width, int64_t nw) {
  const int64_t rows = offsets[batch], slots = 2 * nw + 1, out_width = slots * width;
  if (rows == 0 || width == 0) return;
  parallel_for(0, rows, row_grain(out_width), get_num_threads(), [&](int64_t lo, int64_t hi) {
    int64_t b = sequence_of(offsets, batch, lo);
    for (int64_t j = lo; j < hi; ++j) {
      while (offsets[b + 1] <= j) ++b;
      // Rows [first, last) of the sequence fall in j's window, from its slot `lead` on.
      const int64_t first = std::max(offsets[b], j - nw), last = std::min(offsets[b + 1], j + nw + 1);
      const int64_t lead = first - (j - nw), copied = last - first;
      T* out = cols + j * out_width;
      const auto bytes = [&](int64_t n_slots) { return sizeof(T) * static_cast<size_t>(n_slots * width); };
      std::memset(out, 0, bytes(lead));
      std::memcpy(out + lead * width, x + first * width, bytes(copied));
      std::memset(out + (lead + copied) * width, 0, bytes(slots - lead - copied));
    }
  });
}

template <typename T>
void seq2col_backward(const T* dy, T* dx, const int64_t* offsets, int64_t batch, int64_t width, int64_t nw) {
  const int64_t rows = offsets[batch], slots = 2 * nw + 1, dy_width = slots * width;
  if (rows == 0 || width == 0) return;
  const auto add_row = seq_kernels<T>().add_row;
  parallel_for(0, rows, row_grain(dy_width), get_num_threads(), [&](int64_t lo, int64_t hi) {
    int64_t b = sequence_of(offsets, batch, lo);
    for (int64_t r = lo; r < hi; ++r) {
      while (offsets[b + 1] <= r) ++b;
      // Slot k of row r - k + nw holds row r, for that row inside the sequence.
      const int64_t k_first = std::max<int64_t>(0, r + nw - offsets[b + 1] + 1);
      const int64_t k_last = std::min<int64_t>(slots - 1, r + nw - offsets[b]);
      T* out = dx + r * width;
      std::memcpy(out, dy + (r - k_first + nw) * dy_width + k_first * width, sizeof(T) * static_cast<size_t>(width));
      for (int64_t k = k_first + 1; k <= k_last; ++k) add_row(out, dy + (r - k + nw) * dy_width + k * width, width);
    }
  });
}

template <typename T>
void reduce_sum_forward(const T* x, T* y, const int64_t* offsets, int64_t batch, int64_t cols, bool mean) {
  const auto sum_rows = seq_kernels<T>().sum_rows;
  for_each_part<T>(offsets, batch, cols, get_num_threads(), [&](int64_t b0, int64_t b1, int64_t c0, int64_t c1) {
    for (int64_t b = b0; b < b1; ++b) {
      sum_rows(x + offsets[b] * cols + c0, offsets[b + 1] - offsets[b], cols, c1 - c0, y + b * cols + c0, mean);
    }
  });
}

template <typename T>
void reduce_sum_backward(const T* dy, T* dx, const int64_t* offsets, int64_t batch, int64_t cols, bool mean) {
  const auto fill_rows = seq_kernels<T>().fill_rows;
  for_each_part<T>(offsets, batch, cols, get_num_threads(), [&](int64_t b0, int64_t b1, int64_t c0, int64_t c1) {
    for (int64_t b = b0; b < b1; ++b) {
      fill_rows(dy + b * cols + c0, dx + offsets[b] * cols + c0, offsets[b + 1] - offsets[b], cols, c1 - c0, mean);
    }
  });
}

template <typename T>
void reduce_max_forward(const T* x, T* y, int32_t* which, const int64_t* offsets, int64_t batch, int64_t cols) {
  const auto max_rows = seq_kernels<T>().max_rows;
  for_each_part<T>(offsets, batch, cols, get_num_threads(), [&](int64_t b0, int64_t b1, int64_t c0, int64_t c1) {
    for (int64_t b = b0; b < b1; ++b) {
      max_rows(x + offsets[b] * cols + c0, offsets[b + 1] - offsets[b], cols, c1 - c0, y + b * cols + c0,
               which + b * cols + c0);
    }
  });
}

template <typename T>
int64_t reduce_max_backward(const T* dy, const int32_t* which, T* dx, const int64_t* offsets, int64_t batch,
                            int64_t cols, bool zeroed) {
  std::atomic<int64_t> first{-1};
  for_each_part<T>(offsets, batch, cols, get_num_threads(), [&](int64_t b0, int64_t b1, int64_t c0, int64_t c1) {
    int64_t bad = -1;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t start = offsets[b], length = offsets[b + 1] - start;
      for (int64_t r = start; !zeroed && r < start + length; ++r) {
        std::memset(dx + r * cols + c0, 0, sizeof(T) * static_cast<size_t>(c1 - c0));
      }
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t w = which[b * cols + c];
        if (w >= 0 && w < length) {
          dx[(start + w) * cols + c] = dy[b * cols + c];
        } else if (bad < 0) {
          bad = b * cols + c;
        }
      }
    }
    keep_first(first, bad);
  });
  return first.load();
}

template <typename T, typename Index>
int64_t gather_add(const T* table, const Index* indices, T* out, int64_t table_rows, int64_t cols, int64_t batch,
                   int64_t per_row) {
  const SeqKernels<T>& kernels = seq_kernels<T>();
  int64_t (*kernel)(const T*, const Index*, T*, int64_t, int64_t, int64_t, int64_t, int64_t);
  if constexpr (std::is_same_v<Index, int32_t>) kernel = kernels.gather_add_rows_i32;
  else if constexpr (std::is_same_v<Index, uint32_t>) kernel = kernels.gather_add_rows_u32;
  else kernel = kernels.gather_add_rows_i64;
  std::atomic<int64_t> first{-1};
  parallel_for(0, batch, row_grain((per_row + 1) * cols), get_num_threads(), [&](int64_t lo, int64_t hi) {
    keep_first(first, kernel(table, indices, out, table_rows, cols, per_row, lo, hi));
  });
  return first.load();
}

#define FASTNN_INSTANTIATE_SEQ(T)                                                                          \
  template void maxout_forward<T>(const T*, T*, int32_t*, int64_t, int64_t);                               \
  template int64_t maxout_backward<T>(const T*, const int32_t*, T*, int64_t, int64_t);                     \
  template void seq2col_forward<T>(const T*, T*, const int64_t*, int64_t, int64_t, int64_t);              \
  template void seq2col_backward<T>(const T*, T*, const int64_t*, int64_t, int64_t, int64_t);             \
  template void reduce_sum_forward<T>(const T*, T*, const int64_t*, int64_t, int64_t, bool);              \
  template void reduce_sum_backward<T>(const T*, T*, const int64_t*, int64_t, int64_t, bool);             \
  template void reduce_max_forward<T>(const T*, T*, int32_t*, const int64_t*, int64_t, int64_t);          \
  template int64_t reduce_max_backward<T>(const T*, const int32_t*, T*, const int64_t*, int64_t, int64_t, bool); \
  template int64_t gather_add<T, int32_t>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t, int64_t); \
  template int64_t gather_add<T, uint32_t>(const T*, const uint32_t*, T*, int64_t, int64_t, int64_t, int64_t); \
  template int64_t gather_add<T, int64_t>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, int64_t);
FASTNN_INSTANTIATE_SEQ(float)
FASTNN_INSTANTIATE_SEQ(double)
#undef FASTNN_INSTANTIATE_SEQ

}  // namespace fastnn::cpu
