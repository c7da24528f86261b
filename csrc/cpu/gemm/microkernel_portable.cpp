// Portable GEMM kernels (see microkernel.h), written with GCC/Clang
// vector extensions of 16 bytes: SSE2 on baseline x86-64, NEON elsewhere.
// No FMA at this level, so a multiply and an add.  Tiles: float 4 x 8,
// double 4 x 4 (8 accumulators of the 16 registers SSE2 has).
#include "cpu/gemm/gemm_kernels.h"

#define FASTNN_ISA_NAMESPACE gemm_impl::portable
#include "cpu/activations_kernels.h"

namespace fastnn::cpu::gemm_impl::portable {

template <typename T>
struct Simd {
  typedef T V __attribute__((vector_size(16)));
  static constexpr int kWidth = 16 / sizeof(T);
  static V zero() { return V{}; }
  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, V v) { std::memcpy(p, &v, sizeof v); }
  static V load_partial(const T* p, int n) {
    V v{};
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
  }
  static void store_partial(T* p, V v, int n) {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
  static V set1(T x) { return V{} + x; }
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
  static V mul(V a, V b) { return a * b; }
  static V relu(V x) { return x < V{} ? V{} : x; }  // NaN compares false and passes through
};

// No vector transpose at this level: packing uses the generic loops.
template <typename T>
bool pack_transposed(const T*, int64_t, int, int64_t, T*, int64_t, int) {
  return false;
}

}  // namespace fastnn::cpu::gemm_impl::portable

#include "cpu/gemm/indirect/gather.h"
#include "cpu/gemm/indirect/indirect.h"
#include "cpu/gemm/macrokernel.h"
#include "cpu/gemm/row.h"

namespace fastnn::cpu::gemm_impl::portable {

namespace {

// Dense tiles by output width n: one vector of columns where that is all the output
// has, the main tile otherwise.
KernelSet<float> dense_kernel_f32(int64_t n) {
  if (n <= 4) return make_kernel_set<float, 4, 1>("portable 4x4");
  return make_kernel_set<float, 4, 2>("portable 4x8");
}

KernelSet<double> dense_kernel_f64(int64_t n) {
  if (n <= 2) return make_kernel_set<double, 4, 1>("portable 4x2");
  return make_kernel_set<double, 4, 2>("portable 4x4");
}

// Indirect (convolution) tiles by output width n: as few padded columns as
// possible, then the most rows the register file holds.
IndirectKernel<float> indirect_kernel_f32(int64_t n) {
  if (n <= 4) return make_indirect_kernel<float, 4, 1>("portable indirect 4x4");
  return make_indirect_kernel<float, 4, 2>("portable indirect 4x8");
}

IndirectKernel<double> indirect_kernel_f64(int64_t n) {
  if (n <= 2) return make_indirect_kernel<double, 4, 1>("portable indirect 4x2");
  return make_indirect_kernel<double, 4, 2>("portable indirect 4x4");
}

GatherKernel<float> gather_kernel_f32(int64_t m, int64_t n) {
  (void)m;
  if (n <= 4) return make_gather_kernel<float, 4, 1>("portable gather 4x4");
  return make_gather_kernel<float, 4, 2>("portable gather 4x8");
}

GatherKernel<double> gather_kernel_f64(int64_t m, int64_t n) {
  (void)m;
  if (n <= 2) return make_gather_kernel<double, 4, 1>("portable gather 4x2");
  return make_gather_kernel<double, 4, 2>("portable gather 4x4");
}

}  // namespace

template <typename T>
GemmKernels<T> gemm_kernel_table() {
  if constexpr (sizeof(T) == 4) {
    return {make_kernel_set<float, 4, 2>("portable 4x8"), &dense_kernel_f32, &indirect_kernel_f32,
            &gather_kernel_f32, &row_kernel<float>};
  } else {
    return {make_kernel_set<double, 4, 2>("portable 4x4"), &dense_kernel_f64, &indirect_kernel_f64,
            &gather_kernel_f64, &row_kernel<double>};
  }
}
template GemmKernels<float> gemm_kernel_table<float>();
template GemmKernels<double> gemm_kernel_table<double>();

}  // namespace fastnn::cpu::gemm_impl::portable
