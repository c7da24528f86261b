// What the machine is: its caches (which size the kernels' blocks) and probes of its peak
// FLOP/s and memory bandwidth (for the benchmarks).
#pragma once

#include <cstdint>

namespace fastnn::cpu {

// The data caches of the CPU fastnn runs on, in bytes: L1d and L2 as one core sees them,
// L3 as a whole.  Read once per process from Linux's sysfs (cpu0's cache/index*), which
// reports what CPUID says per cache; glibc's sysconf is the fallback (it can be wrong:
// on some AMD guests it reports L3 ten times too big), then defaults of 32 KiB / 1 MiB /
// 8 MiB.  `source` says which ("sysfs", "sysconf", "default"; one value per level,
// comma-separated, L1d first).
struct CacheSizes {
  int64_t l1d = 0, l2 = 0, l3 = 0;
  const char* source = "";
};
const CacheSizes& cache_sizes();

// Float32 FLOPs per second over all threads with the widest FMA the ISA has.
double measure_peak_flops(double seconds);
// Bytes per second of a multi-threaded a = b + s*c triad over n floats (3 streams).
double measure_triad_bandwidth(float* a, const float* b, const float* c, int64_t n, int repeats);

}  // namespace fastnn::cpu
