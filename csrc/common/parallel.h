// Thread count and the one parallel-for every CPU kernel uses.  Every chunk
// runs under a FloatModeGuard (float_mode.h): flush-to-zero when enabled.
//
// The count lives in a process-wide atomic rather than in OpenMP's per-thread
// ICV: omp_set_num_threads() only affects the calling thread, and fastnn's
// kernels are called from whichever Python thread holds the array.  Every
// parallel region passes num_threads(get_num_threads()) explicitly.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/float_mode.h"

#ifdef FASTNN_OPENMP
#include <omp.h>
#endif

namespace fastnn {

int get_num_threads();
void set_num_threads(int n);   // n >= 1
bool openmp_enabled();

// Splits [begin, end) into at most get_num_threads() contiguous chunks of at
// least `grain` iterations and calls fn(chunk_begin, chunk_end) on each.
// Runs inline when there is only one chunk, so small calls pay no fork cost.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  const int64_t total = end - begin;
  if (total <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (total + grain - 1) / grain;
  const int64_t chunks = std::min<int64_t>(get_num_threads(), max_chunks);
  if (chunks <= 1) {
    FloatModeGuard mode;
    fn(begin, end);
    return;
  }
#ifdef FASTNN_OPENMP
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    FloatModeGuard mode;
    const int64_t lo = begin + total * c / chunks;
    const int64_t hi = begin + total * (c + 1) / chunks;
    fn(lo, hi);
  }
#else
  FloatModeGuard mode;
  fn(begin, end);
#endif
}

// Like parallel_for, but with at most max_chunks chunks and the chunk's index
// passed along: fn(chunk, chunk_begin, chunk_end).  For kernels that give each
// chunk its own slice of a caller-sized workspace.
template <typename F>
void parallel_chunks(int64_t begin, int64_t end, int64_t grain, int64_t max_chunks, const F& fn) {
  const int64_t total = end - begin;
  if (total <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>({static_cast<int64_t>(get_num_threads()), (total + grain - 1) / grain, max_chunks}));
  if (chunks == 1) {
    FloatModeGuard mode;
    fn(int64_t{0}, begin, end);
    return;
  }
#ifdef FASTNN_OPENMP
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    FloatModeGuard mode;
    fn(c, begin + total * c / chunks, begin + total * (c + 1) / chunks);
  }
}

// Sums fn(chunk_begin, chunk_end) -> double over the same chunks parallel_for
// would use, adding the partial results in chunk order: deterministic for a
// given thread count.
template <typename F>
double parallel_reduce_sum(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  constexpr int64_t kMaxChunks = 256;
  const int64_t total = end - begin;
  if (total <= 0) return 0.0;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks =
      std::min<int64_t>({static_cast<int64_t>(get_num_threads()), (total + grain - 1) / grain, kMaxChunks});
  if (chunks <= 1) {
    FloatModeGuard mode;
    return fn(begin, end);
  }
  double partial[kMaxChunks];
#ifdef FASTNN_OPENMP
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    FloatModeGuard mode;
    partial[c] = fn(begin + total * c / chunks, begin + total * (c + 1) / chunks);
  }
  double sum = 0.0;
  for (int64_t c = 0; c < chunks; ++c) sum += partial[c];
  return sum;
}

}  // namespace fastnn
