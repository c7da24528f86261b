#include "cpu/machine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/cpu_features.h"
#include "common/parallel.h"

namespace fastnn::cpu {
namespace {

// "32K" / "1024K" / "32M" (sysfs' size format) in bytes; 0 when unreadable.
int64_t parse_size(const char* text) {
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (end == text || value <= 0) return 0;
  switch (*end) {
    case 'K': case 'k': return int64_t(value) << 10;
    case 'M': case 'm': return int64_t(value) << 20;
    case 'G': case 'g': return int64_t(value) << 30;
    default: return int64_t(value);
  }
}

// The first line of a small file, without its newline; empty when unreadable.
std::string read_line(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return {};
  char buffer[64] = {};
  const bool ok = std::fgets(buffer, sizeof buffer, f) != nullptr;
  std::fclose(f);
  if (!ok) return {};
  buffer[std::strcspn(buffer, "\n")] = '\0';
  return buffer;
}

// Data or unified cache of `level` from cpu0's sysfs entries; 0 when absent.
int64_t sysfs_cache(int level) {
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string lvl = read_line(dir + "level");
    if (lvl.empty()) break;
    if (std::atoi(lvl.c_str()) != level) continue;
    const std::string type = read_line(dir + "type");
    if (type != "Data" && type != "Unified") continue;
    return parse_size(read_line(dir + "size").c_str());
  }
  return 0;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes sizes = [] {
    static std::string source;
    const int sysconf_names[3] = {_SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL2_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE};
    const int64_t defaults[3] = {int64_t(32) << 10, int64_t(1) << 20, int64_t(8) << 20};
    int64_t found[3];
    for (int level = 1; level <= 3; ++level) {
      int64_t bytes = sysfs_cache(level);
      const char* from = "sysfs";
      if (bytes <= 0) {
        bytes = sysconf(sysconf_names[level - 1]);
        from = "sysconf";
      }
      if (bytes <= 0) {
        bytes = defaults[level - 1];
        from = "default";
      }
      found[level - 1] = bytes;
      source += (level > 1 ? "," : "") + std::string(from);
    }
    CacheSizes s;
    s.l1d = found[0];
    s.l2 = found[1];
    s.l3 = found[2];
    s.source = source.c_str();
    return s;
  }();
  return sizes;
}

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
