// The sequence ops of Thinc's models (fastnn.ops: maxout, seq2col, the ragged
// reductions, gather_add), forward and backward, on C-contiguous arrays.
//
// A ragged batch is `rows` rows of `cols` values, sequence after sequence;
// `offsets` holds batch + 1 row offsets (offsets[0] = 0, non-decreasing,
// offsets[batch] = rows), which the caller has checked.  Every kernel
// parallelises over rows or sequences (split where the rows are balanced, and
// over column blocks when there are fewer sequences than threads) and
// vectorises over the contiguous columns; none allocates.
//
// The backward kernels that scatter through an index array and gather_add,
// which gathers through one, check every index before they use it: they return
// the flat position of the first one out of range (-1 when none is), having
// written the rest, and the caller raises.  Ties go to the first maximum, and
// the first NaN wins, as np.argmax.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

// best[u] = max(x[u, :pieces]), which[u] its piece, for units u < units.
template <typename T>
void maxout_forward(const T* x, T* best, int32_t* which, int64_t units, int64_t pieces);

// dx[u, p] = p == which[u] ? dy[u] : 0.
template <typename T>
int64_t maxout_backward(const T* dy, const int32_t* which, T* dx, int64_t units, int64_t pieces);

// cols[j, k * width: (k + 1) * width] = x[j + k - nw] when that row is in j's
// sequence, else zeros (k < 2 * nw + 1).
template <typename T>
void seq2col_forward(const T* x, T* cols, const int64_t* offsets, int64_t batch, int64_t width, int64_t nw);

// dx[r] = sum over k of dy[r - k + nw, k * width: (k + 1) * width], over the
// rows r - k + nw in r's sequence, in increasing k.
template <typename T>
void seq2col_backward(const T* dy, T* dx, const int64_t* offsets, int64_t batch, int64_t width, int64_t nw);

// y[b] = the sum of sequence b's rows (in row order), divided by its length
// with `mean`; zeros for a sequence without rows.
template <typename T>
void reduce_sum_forward(const T* x, T* y, const int64_t* offsets, int64_t batch, int64_t cols, bool mean);

// Every row of sequence b gets dy[b] (dy[b] / length with `mean`).
template <typename T>
void reduce_sum_backward(const T* dy, T* dx, const int64_t* offsets, int64_t batch, int64_t cols, bool mean);

// y[b] = the maximum of sequence b's rows, which[b] the row within the
// sequence; every sequence has at least one row and fewer than 2**31.
template <typename T>
void reduce_max_forward(const T* x, T* y, int32_t* which, const int64_t* offsets, int64_t batch, int64_t cols);

// dx = 0 (unless the caller says it is, `zeroed`: a fresh calloc'ed buffer costs less
// than a memset), then dx[offsets[b] + which[b, c], c] = dy[b, c]; which[b, c] must lie
// in [0, length of b).
template <typename T>
int64_t reduce_max_backward(const T* dy, const int32_t* which, T* dx, const int64_t* offsets, int64_t batch,
                            int64_t cols, bool zeroed);

// out[b] = sum over k of table[indices[b, k]] (in k order); every index must
// lie in [0, table_rows).  Index is int32_t, uint32_t or int64_t.
template <typename T, typename Index>
int64_t gather_add(const T* table, const Index* indices, T* out, int64_t table_rows, int64_t cols, int64_t batch,
                   int64_t per_row);

}  // namespace fastnn::cpu
