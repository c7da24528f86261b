// Thread count and the one parallel-for every CPU kernel uses.  Every chunk
// runs under a FloatModeGuard (float_mode.h): flush-to-zero when enabled.
//
// The count lives in a process-wide atomic rather than in OpenMP's per-thread
// ICV: omp_set_num_threads() only affects the calling thread, and fastnn's
// kernels are called from whichever Python thread holds the array.  Every
// parallel region passes num_threads(team) explicitly, with the team size its
// kernel read once at entry.
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

// Team sizes.  The thread count can change at any moment (another Python thread
// calling set_num_threads while a kernel runs), so a kernel reads it ONCE, at its
// entry, and passes that team size to everything that depends on it: the
// workspace it sizes, the partial sums it zeroes and adds, and every parallel
// region below.  None of these helpers reads the count itself.

// The number of chunks parallel_for / parallel_chunks / parallel_reduce_sum cut
// [begin, end) into with this grain and team: at most `team`, each of at least
// `grain` iterations (the last excepted), at least 1 when the range is not empty.
inline int64_t chunk_count(int64_t total, int64_t grain, int64_t team) {
  if (total <= 0) return 0;
  grain = std::max<int64_t>(grain, 1);
  return std::max<int64_t>(1, std::min<int64_t>(team, (total + grain - 1) / grain));
}

// Runs fn(chunk, chunk_begin, chunk_end) on each of the `chunks` contiguous
// chunks of [begin, end), in parallel on a team of that many threads (inline
// when there is one).  A runtime that grants fewer threads still runs every
// chunk, each exactly once, with its own index.
template <typename F>
void run_chunks(int64_t begin, int64_t end, int64_t chunks, const F& fn) {
  const int64_t total = end - begin;
  if (chunks <= 1) {
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

// Splits [begin, end) into at most `team` contiguous chunks of at least `grain`
// iterations and calls fn(chunk_begin, chunk_end) on each.  Runs inline when
// there is only one chunk, so small calls pay no fork cost.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, int64_t team, const F& fn) {
  const int64_t chunks = chunk_count(end - begin, grain, team);
  if (chunks == 0) return;
  run_chunks(begin, end, chunks, [&](int64_t, int64_t lo, int64_t hi) { fn(lo, hi); });
}

// Like parallel_for, with the chunk's index passed along: fn(chunk, chunk_begin,
// chunk_end), for kernels that give each chunk its own slice of a workspace
// sized for chunk_count(end - begin, grain, team) chunks.  Returns that count
// (0 for an empty range): exactly the chunks that ran.
template <typename F>
int64_t parallel_chunks(int64_t begin, int64_t end, int64_t grain, int64_t team, const F& fn) {
  const int64_t chunks = chunk_count(end - begin, grain, team);
  if (chunks > 0) run_chunks(begin, end, chunks, fn);
  return chunks;
}

// Sums fn(chunk_begin, chunk_end) -> double over the same chunks parallel_for
// would use, adding the partial results in chunk order: deterministic for a
// given team size.
template <typename F>
double parallel_reduce_sum(int64_t begin, int64_t end, int64_t grain, int64_t team, const F& fn) {
  constexpr int64_t kMaxChunks = 256;
  const int64_t chunks = chunk_count(end - begin, grain, std::min<int64_t>(team, kMaxChunks));
  if (chunks == 0) return 0.0;
  if (chunks == 1) {
    FloatModeGuard mode;
    return fn(begin, end);
  }
  double partial[kMaxChunks];
  run_chunks(begin, end, chunks, [&](int64_t c, int64_t lo, int64_t hi) { partial[c] = fn(lo, hi); });
  double sum = 0.0;
  for (int64_t c = 0; c < chunks; ++c) sum += partial[c];
  return sum;
}

}  // namespace fastnn
