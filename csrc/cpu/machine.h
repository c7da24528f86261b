// Probes of the machine's peak FLOP/s and memory bandwidth, for the benchmarks.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

// Float32 FLOPs per second over all threads with the widest FMA the ISA has.
double measure_peak_flops(double seconds);
// Bytes per second of a multi-threaded a = b + s*c triad over n floats (3 streams).
double measure_triad_bandwidth(float* a, const float* b, const float* c, int64_t n, int repeats);

}  // namespace fastnn::cpu
