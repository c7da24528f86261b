#include "common/parallel.h"

#include <atomic>
#include <cstdlib>
#include <thread>

namespace fastnn {
namespace {

int default_num_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
#ifdef FASTNN_OPENMP
  return std::max(1, omp_get_num_procs());
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{default_num_threads()};
  return count;
}

}  // namespace

int get_num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  thread_count().store(std::max(1, n), std::memory_order_relaxed);
#ifdef FASTNN_OPENMP
  // Also set the ICV of the calling thread so that threadpoolctl, which reads
  // omp_get_max_threads() through the OpenMP runtime, reports the same number.
  omp_set_num_threads(std::max(1, n));
#endif
}

bool openmp_enabled() {
#ifdef FASTNN_OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace fastnn
