#include "cpu/machine.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/cpu_features.h"
#include "common/parallel.h"

namespace fastnn::cpu {
namespace avx512 { float fma_chains(int64_t iterations); }
namespace avx2 { float fma_chains(int64_t iterations); }

double measure_peak_flops(double seconds) {
  const Isa isa = selected_isa();
  if (isa == Isa::portable) return 0.0;  // no FMA probe without AVX2
  const int lanes = isa == Isa::avx512 ? 16 : 8;
  const int threads = get_num_threads();
  const int64_t iterations = 1 << 22;
  std::atomic<float> sink{0};
  double best = 0;
  const auto start = std::chrono::steady_clock::now();
  do {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, threads, 1, threads, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const float r = isa == Isa::avx512 ? avx512::fma_chains(iterations) : avx2::fma_chains(iterations);
        sink.store(r, std::memory_order_relaxed);
      }
    });
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * 16 * lanes * static_cast<double>(iterations) * threads / dt);
  } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
  return best;
}

double measure_triad_bandwidth(float* a, const float* b, const float* c, int64_t n, int repeats) {
  const int threads = get_num_threads();
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(0, n, 1 << 16, threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) a[i] = b[i] + 0.5f * c[i];
    });
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 3.0 * sizeof(float) * static_cast<double>(n) / dt);
  }
  return best;
}

}  // namespace fastnn::cpu
