// The per-ISA sequence-op kernels (seq_kernels.h, compiled by seq_<isa>.cpp)
// as one table; seq.cpp resolves it once (cpu/dispatch.h) and splits the work
// across threads.  Each kernel handles one range of units, rows or sequences on
// the calling thread; strides and column counts are in elements.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

template <typename T>
struct SeqKernels {
  // maxout over units [begin, end) of `pieces` values each.
  void (*maxout_units)(const T* x, T* best, int32_t* which, int64_t begin, int64_t end, int64_t pieces);
  // Its backward: returns the first unit in [begin, end) whose which is out of
  // range (that unit's pieces are zeros), or -1.
  int64_t (*maxout_backward_units)(const T* dy, const int32_t* which, T* dx, int64_t begin, int64_t end,
                                   int64_t pieces);
  // dst[i] += src[i] for i < n.
  void (*add_row)(T* dst, const T* src, int64_t n);
  // y[c] = x[0, c] + x[1, c] + ... over `rows` rows `stride` apart, c < cols
  // (0 for no rows); divided by `rows` with `mean` (when there are rows).
  void (*sum_rows)(const T* x, int64_t rows, int64_t stride, int64_t cols, T* y, bool mean);
  // y[c] = max over the rows of x[r, c] (at least one row), which[c] its row.
  void (*max_rows)(const T* x, int64_t rows, int64_t stride, int64_t cols, T* y, int32_t* which);
  // Each of `rows` rows of dst (`stride` apart) = src[:cols], divided by `rows` with `mean`.
  void (*fill_rows)(const T* src, T* dst, int64_t rows, int64_t stride, int64_t cols, bool mean);
  // out[b] = the sum of table rows indices[b, :per_row] for b in [begin, end);
  // returns the flat position (b * per_row + k) of the first index outside
  // [0, table_rows), or -1.  A row holding one is left unwritten.
  int64_t (*gather_add_rows_i32)(const T* table, const int32_t* indices, T* out, int64_t table_rows,
                                 int64_t cols, int64_t per_row, int64_t begin, int64_t end);
  int64_t (*gather_add_rows_u32)(const T* table, const uint32_t* indices, T* out, int64_t table_rows,
                                 int64_t cols, int64_t per_row, int64_t begin, int64_t end);
  int64_t (*gather_add_rows_i64)(const T* table, const int64_t* indices, T* out, int64_t table_rows,
                                 int64_t cols, int64_t per_row, int64_t begin, int64_t end);
};

namespace portable { template <typename T> SeqKernels<T> seq_kernel_table(); }
namespace avx2 { template <typename T> SeqKernels<T> seq_kernel_table(); }
namespace avx512 { template <typename T> SeqKernels<T> seq_kernel_table(); }

}  // namespace fastnn::cpu
