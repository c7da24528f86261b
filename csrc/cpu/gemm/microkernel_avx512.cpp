// GEMM kernels for AVX-512 (see microkernel.h).  Tiles: float 6 x 64
// (four zmm columns: 24 accumulators + 4 B vectors + 1 broadcast; 10 loads
// per 24 FMAs), double 14 x 16 (two zmm columns: 28 + 2 + 1 = 31 of 32
// registers); the narrow sets keep one zmm column for outputs <= 16 wide.
// Float 6 x 64 against 14 x 32 on Sapphire Rapids (2 FMA ports), one
// thread: equal at n = 1024, +7% at n = 256 and on the seed's x.T @ dy
// (fewer wasted rows when M is not a multiple of 14).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu/gemm/gemm_kernels.h"

// Scalar sigmoid/tanh for the epilogue, compiled for this ISA in our namespace.
#define FASTNN_ISA_NAMESPACE gemm_impl::avx512
#include "cpu/activations_kernels.h"

namespace fastnn::cpu::gemm_impl::avx512 {

template <typename T> struct Simd;

template <> struct Simd<float> {
  using V = __m512;
  static constexpr int kWidth = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_partial(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  // x < 0 ? 0 : x, as the reference writes it: NaN compares false and passes through.
  static V relu(V x) { return _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, zero(), _CMP_LT_OQ), zero()); }
};

template <> struct Simd<double> {
  using V = __m512d;
  static constexpr int kWidth = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static __mmask8 mask(int n) { return static_cast<__mmask8>((1u << n) - 1u); }
  static V load_partial(const double* p, int n) { return _mm512_maskz_loadu_pd(mask(n), p); }
  static void store_partial(double* p, V v, int n) { _mm512_mask_storeu_pd(p, mask(n), v); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V relu(V x) { return _mm512_mask_mov_pd(x, _mm512_cmp_pd_mask(x, zero(), _CMP_LT_OQ), zero()); }
};

// GCC 12 warns (wrongly) that the non-masked shuffle intrinsics use an
// uninitialised __Y: they are built on the masked builtins with an undefined
// pass-through operand.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// In-register 16 x 16 transpose: unpack pairs of rows, then pairs of pairs
// (as doubles), then a 4 x 4 transpose of the 128-bit lanes.  64 shuffles
// per 256 elements, against one load and one store each.
inline void transpose16x16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  __m512 u[16];  // u[4g + c], lane L: column 4L + c of rows 4g .. 4g+3
  for (int g = 0; g < 4; ++g) {
    const __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}

// dst[p*dst_stride + i] = src[i*lds + p] for p < kc, i < width (<= 16);
// rows past `rows` are zero.  The transposing half of packing.
template <typename T>
bool pack_transposed(const T*, int64_t, int, int64_t, T*, int64_t, int) {
  return false;  // double: the generic loop
}

template <>
inline bool pack_transposed<float>(const float* src, int64_t lds, int rows, int64_t kc, float* dst,
                                   int64_t dst_stride, int width) {
  if (width > 16) return false;
  const __mmask16 out_mask = static_cast<__mmask16>((1u << width) - 1u);
  for (int64_t p0 = 0; p0 < kc; p0 += 16) {
    const int pn = static_cast<int>(std::min<int64_t>(16, kc - p0));
    const __mmask16 in_mask = static_cast<__mmask16>((1u << pn) - 1u);
    __m512 r[16];
    for (int i = 0; i < 16; ++i) {
      r[i] = i < rows ? _mm512_maskz_loadu_ps(in_mask, src + i * lds + p0) : _mm512_setzero_ps();
    }
    transpose16x16(r);
    for (int p = 0; p < pn; ++p) _mm512_mask_storeu_ps(dst + (p0 + p) * dst_stride, out_mask, r[p]);
  }
  return true;
}

#pragma GCC diagnostic pop

}  // namespace fastnn::cpu::gemm_impl::avx512

#include "cpu/gemm/indirect/gather.h"
#include "cpu/gemm/indirect/indirect.h"
#include "cpu/gemm/macrokernel.h"
#include "cpu/gemm/row.h"

namespace fastnn::cpu::gemm_impl::avx512 {

namespace {

// Dense tiles by output width n: the tile that pads the fewest columns, 6 x 64 on a tie
// (the fewest loads per FMA: 10 per 24), then 8 x 48 (11 per 24), then 14 x 32 (16 per
// 28); one vector of columns for n <= 16.  n = 96 or 288 (a Thinc Maxout's 3 x 96
// pieces) on 6 x 64 computes 25 or 10% of its lanes for nothing.
KernelSet<float> dense_kernel_f32(int64_t n) {
  if (n <= 16) return make_kernel_set<float, 14, 1>("avx512 14x16");
  auto pad = [n](int64_t nr) { return (n + nr - 1) / nr * nr - n; };
  if (pad(64) <= pad(48) && pad(64) <= pad(32)) return make_kernel_set<float, 6, 4>("avx512 6x64");
  if (pad(48) <= pad(32)) return make_kernel_set<float, 8, 3>("avx512 8x48");
  return make_kernel_set<float, 14, 2>("avx512 14x32");
}

KernelSet<double> dense_kernel_f64(int64_t n) {
  if (n <= 8) return make_kernel_set<double, 14, 1>("avx512 14x8");
  return make_kernel_set<double, 14, 2>("avx512 14x16");
}

// Indirect (convolution) tiles by output width n: as few padded columns as
// possible, then the most rows the register file holds (14x32: 28 accumulators
// + 2 B vectors + 1 broadcast; 1.8-3.8% over 12x32 on the seed's conv2
// backward-data, A/B).
IndirectKernel<float> indirect_kernel_f32(int64_t n) {
  const int64_t vectors = (n + 15) / 16;
  if (vectors <= 1) return make_indirect_kernel<float, 14, 1>("avx512 indirect 14x16");
  if (vectors <= 2) return make_indirect_kernel<float, 14, 2>("avx512 indirect 14x32");
  if (vectors <= 3) return make_indirect_kernel<float, 8, 3>("avx512 indirect 8x48");
  return make_indirect_kernel<float, 6, 4>("avx512 indirect 6x64");
}

IndirectKernel<double> indirect_kernel_f64(int64_t n) {
  if (n <= 8) return make_indirect_kernel<double, 14, 1>("avx512 indirect 14x8");
  return make_indirect_kernel<double, 14, 2>("avx512 indirect 14x16");
}

GatherKernel<float> gather_kernel_f32(int64_t m, int64_t n) {
  // Rows are a tap's channels: a tile that divides them wastes no rows.
  const int64_t vectors = (n + 15) / 16;
  if (vectors <= 1) {
    // One vector of columns leaves registers for up to 30 rows; take the row count of
    // 16, 15, 14, 12, 10, 8 or 6 that pads the fewest (the most rows on a tie), so
    // LeNet-5's 6->16 5x5 (runs of 30) is two tiles of 15, not 14 + 14 + 2.
    auto pad = [m](int64_t mr) { return (m + mr - 1) / mr * mr - m; };
    int64_t best = 14;
    for (int64_t mr : {16, 15, 14, 12, 10, 8, 6}) {
      if (pad(mr) < pad(best)) best = mr;
    }
    switch (best) {
      case 16: return make_gather_kernel<float, 16, 1>("avx512 gather 16x16");
      case 15: return make_gather_kernel<float, 15, 1>("avx512 gather 15x16");
      case 12: return make_gather_kernel<float, 12, 1>("avx512 gather 12x16");
      case 10: return make_gather_kernel<float, 10, 1>("avx512 gather 10x16");
      case 8: return make_gather_kernel<float, 8, 1>("avx512 gather 8x16");
      case 6: return make_gather_kernel<float, 6, 1>("avx512 gather 6x16");
      default: return make_gather_kernel<float, 14, 1>("avx512 gather 14x16");
    }
  }
  if (vectors <= 2) {
    // Two vectors: at most 14 rows.  Short runs take the row count that pads the fewest
    // (6->32 5x5, runs of 30: 10 rows, 1.05x; 16->32, runs of 16: 8 rows, 1.24x); from 64
    // rows on, 12 stays (8 rows measured 0.95-0.99x of it at 64 and 128).
    auto pad = [m](int64_t mr) { return (m + mr - 1) / mr * mr - m; };
    int64_t best = 12;
    for (int64_t mr : {14, 10, 8}) {
      if (m >= 64) break;
      if (pad(mr) < pad(best)) best = mr;
    }
    switch (best) {
      case 14: return make_gather_kernel<float, 14, 2>("avx512 gather 14x32");
      case 10: return make_gather_kernel<float, 10, 2>("avx512 gather 10x32");
      case 8: return make_gather_kernel<float, 8, 2>("avx512 gather 8x32");
      default: return make_gather_kernel<float, 12, 2>("avx512 gather 12x32");
    }
  }
  if (vectors <= 3) return make_gather_kernel<float, 8, 3>("avx512 gather 8x48");
  // Four vectors: 6 rows (24 accumulators) unless they pad over a sixteenth of the run
  // and 4 rows divide it.  ResNet-18's 64->128 and 128->256 stride 2 (runs of 64 and 128,
  // 3% padded): 6x64 1.02-1.06x of 4x64; runs of 16 and 32 (12.5% padded): 0.95-0.99x.
  const int64_t pad6 = (m + 5) / 6 * 6 - m;
  if (pad6 * 16 > m && m % 4 == 0) return make_gather_kernel<float, 4, 4>("avx512 gather 4x64");
  return make_gather_kernel<float, 6, 4>("avx512 gather 6x64");
}

GatherKernel<double> gather_kernel_f64(int64_t m, int64_t n) {
  (void)m;
  if (n <= 8) return make_gather_kernel<double, 14, 1>("avx512 gather 14x8");
  return make_gather_kernel<double, 14, 2>("avx512 gather 14x16");
}

}  // namespace

template <typename T>
GemmKernels<T> gemm_kernel_table() {
  if constexpr (sizeof(T) == 4) {
    return {make_kernel_set<float, 6, 4>("avx512 6x64"), &dense_kernel_f32, &indirect_kernel_f32,
            &gather_kernel_f32, &row_kernel<float>};
  } else {
    return {make_kernel_set<double, 14, 2>("avx512 14x16"), &dense_kernel_f64, &indirect_kernel_f64,
            &gather_kernel_f64, &row_kernel<double>};
  }
}
template GemmKernels<float> gemm_kernel_table<float>();
template GemmKernels<double> gemm_kernel_table<double>();

}  // namespace fastnn::cpu::gemm_impl::avx512
