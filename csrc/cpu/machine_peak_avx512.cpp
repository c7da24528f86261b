// Machine probes for the benchmarks: the FLOP/s and memory bandwidth that "fraction of
// peak" is measured against. They measure, they do not compute anything useful.
//
// Peak: every thread runs 16 independent chains of AVX-512 FMAs (enough to cover the
// 4-cycle FMA latency on two ports), so the loop is bound by FMA throughput alone.
#include <immintrin.h>

#include <cstdint>

namespace fastnn::cpu::avx512 {

float fma_chains(int64_t iterations) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f);
  const __m512 b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 16; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

}  // namespace fastnn::cpu::avx512
