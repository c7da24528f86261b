// GEMM kernels for AVX2 + FMA (see microkernel.h).  Tiles: float 6 x 16,
// double 6 x 8 (two ymm columns: 12 accumulators + 2 B vectors + 1 broadcast
// = 15 of 16 registers); the narrow sets keep one ymm column.
#include <immintrin.h>

#include "cpu/gemm/gemm_kernels.h"

#define FASTNN_ISA_NAMESPACE gemm_impl::avx2
#include "cpu/activations_kernels.h"

namespace fastnn::cpu::gemm_impl::avx2 {

template <typename T> struct Simd;

template <> struct Simd<float> {
  using V = __m256;
  static constexpr int kWidth = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static V load_partial(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_partial(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V relu(V x) { return _mm256_max_ps(zero(), x); }  // NaN in x comes out (2nd operand)
};

template <> struct Simd<double> {
  using V = __m256d;
  static constexpr int kWidth = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static __m256i mask(int n) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)); }
  static V load_partial(const double* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  static void store_partial(double* p, V v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V relu(V x) { return _mm256_max_pd(zero(), x); }
};

// No vector transpose at this level: packing uses the generic loops.
template <typename T>
bool pack_transposed(const T*, int64_t, int, int64_t, T*, int64_t, int) {
  return false;
}

}  // namespace fastnn::cpu::gemm_impl::avx2

#include "cpu/gemm/indirect/gather.h"
#include "cpu/gemm/indirect/indirect.h"
#include "cpu/gemm/macrokernel.h"
#include "cpu/gemm/row.h"

namespace fastnn::cpu::gemm_impl::avx2 {

namespace {

// Dense tiles by output width n: one vector of columns where that is all the output
// has, the main tile otherwise.
KernelSet<float> dense_kernel_f32(int64_t n) {
  if (n <= 8) return make_kernel_set<float, 6, 1>("avx2 6x8");
  return make_kernel_set<float, 6, 2>("avx2 6x16");
}

KernelSet<double> dense_kernel_f64(int64_t n) {
  if (n <= 4) return make_kernel_set<double, 6, 1>("avx2 6x4");
  return make_kernel_set<double, 6, 2>("avx2 6x8");
}

// Indirect (convolution) tiles by output width n: as few padded columns as
// possible, then the most rows the register file holds.
IndirectKernel<float> indirect_kernel_f32(int64_t n) {
  if (n <= 8) return make_indirect_kernel<float, 12, 1>("avx2 indirect 12x8");
  return make_indirect_kernel<float, 6, 2>("avx2 indirect 6x16");
}

IndirectKernel<double> indirect_kernel_f64(int64_t n) {
  if (n <= 4) return make_indirect_kernel<double, 12, 1>("avx2 indirect 12x4");
  return make_indirect_kernel<double, 6, 2>("avx2 indirect 6x8");
}

GatherKernel<float> gather_kernel_f32(int64_t m, int64_t n) {
  (void)m;
  if (n <= 8) return make_gather_kernel<float, 12, 1>("avx2 gather 12x8");
  return make_gather_kernel<float, 6, 2>("avx2 gather 6x16");
}

GatherKernel<double> gather_kernel_f64(int64_t m, int64_t n) {
  (void)m;
  if (n <= 4) return make_gather_kernel<double, 12, 1>("avx2 gather 12x4");
  return make_gather_kernel<double, 6, 2>("avx2 gather 6x8");
}

}  // namespace

template <typename T>
GemmKernels<T> gemm_kernel_table() {
  if constexpr (sizeof(T) == 4) {
    return {make_kernel_set<float, 6, 2>("avx2 6x16"), &dense_kernel_f32, &indirect_kernel_f32,
            &gather_kernel_f32, &row_kernel<float>};
  } else {
    return {make_kernel_set<double, 6, 2>("avx2 6x8"), &dense_kernel_f64, &indirect_kernel_f64,
            &gather_kernel_f64, &row_kernel<double>};
  }
}
template GemmKernels<float> gemm_kernel_table<float>();
template GemmKernels<double> gemm_kernel_table<double>();

}  // namespace fastnn::cpu::gemm_impl::avx2
