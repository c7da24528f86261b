// The contract between the blocked GEMM driver (gemm.cpp, baseline ISA) and
// the per-ISA packing routines and macro-kernels (microkernel_<isa>.cpp).
//
// Packed layouts (BLIS-style):
//   A block (mc x kc) -> ceil(mc/MR) panels, each kc x MR, k-major:
//                        panel[p*MR + i] = op(A)(i, p), rows past mc are zero.
//   B block (kc x nc) -> ceil(nc/NR) panels, each kc x NR, k-major:
//                        panel[p*NR + j] = op(B)(p, j), columns past nc are zero.
// A macro-kernel multiplies one A block (packed, or read in place when A is
// row-major and not worth packing) by a range of B panels into C.
#pragma once

#include <cstdint>

#include "cpu/activations.h"

namespace fastnn::cpu::gemm_impl {

// What a tile does with its accumulator: on the first k block
// C = alpha*acc + beta*C (C unread when beta == 0), on later ones
// C += alpha*acc; on the last one bias and activation follow.
template <typename T>
struct Epilogue {
  T alpha;
  T beta;
  bool first;
  bool last;
  const T* bias;  // at column 0 of the macro-kernel's C, or null; used when last
  Activation act;
};

template <typename T>
struct MacroTask {
  int64_t mc, nc, kc;
  const T* a;       // packed A block, or op(A)(row 0, k 0) when lda > 0
  int64_t lda;      // 0: a is packed; > 0: a is read in place
  bool trans_a;     // in place: a[p*lda + i] rather than a[i*lda + p]
  const T* b;       // first packed B panel used, or op(B)(k 0, col 0) when ldb > 0
  int64_t b_stride; // packed: elements from one B panel to the next (>= kc*NR)
  int64_t ldb;      // 0: b is packed; > 0: b is row-major (not transposed), read in place
  T* b_scratch;     // >= kc*NR elements; packs the column tail of an in-place B
  T* c;             // C(row 0, col 0) of this task
  int64_t ldc;
  T* scratch;       // >= MR*kc elements; packs the row tail of an in-place A
  Epilogue<T> ep;
};

template <typename T>
struct KernelSet {
  int mr;
  int nr;
  int lanes;  // elements per vector register
  const char* name;
  void (*pack_a)(int64_t mc, int64_t kc, const T* a, int64_t lda, bool trans_a, T* dst);
  void (*pack_b)(int64_t kc, int64_t nc, const T* b, int64_t ldb, bool trans_b, T* dst);
  void (*macro)(const MacroTask<T>& task);
};

// Indirect GEMM, the core of convolution without an im2col copy:
//   C(i, :) = epilogue( sum_t run(i, t)[0, kc) @ B_t )
// Row i of op(A) is the concatenation over taps t of the kc-element runs
// rows[i*taps + t] (each readable for kc elements: a pixel's channels, or a
// zero run for padding); B_t is the kc x nc block of tap t.  B is packed in
// NR-column panels (pack_b's layout per tap), tap t of panel q at
// b + q*b_panel_stride + t*b_tap_stride.
template <typename T>
struct IndirectTask {
  int64_t mc, nc;             // rows and columns of C
  int64_t taps, kc;           // an A row: taps runs of kc elements
  const T* const* rows;       // mc x taps run pointers
  const T* zero;              // the zero run: a tap whose runs are all zero is skipped
  const T* b;
  int64_t b_tap_stride, b_panel_stride;
  T* c;
  int64_t ldc;
  Epilogue<T> ep;
};

// Gathered GEMM, convolution weight gradients without an im2col copy:
//   C(i, j) += sum_p runs[p][i] * b_rows[p][j]    i < mc, j < nc, p < kc
// Column p of A is the mc-element run at runs[p] (a pixel's channels) and row
// p of B the nc-element row at b_rows[p] (that pixel's output gradient), so
// the caller lists only the pixels a tap actually reads (none in the padding).
template <typename T>
struct GatherTask {
  int64_t mc, nc, kc;
  const T* const* runs;
  const T* const* b_rows;
  T* c;
  int64_t ldc;
};

// One row of C (m = 1), without packing:
//   c[j] = epilogue(alpha * sum_p a[p * a_step] * op(B)(p, j))    j < nc, p < kc
// op(B)(p, j) is b[p * ldb + j] (row-major B) or b[j * ldb + p] (trans_b, which
// needs a_step == 1).  The epilogue is the tiles' (Epilogue, first and last).
template <typename T>
struct RowTask {
  int64_t nc, kc;
  const T* a;
  int64_t a_step;
  const T* b;
  int64_t ldb;
  bool trans_b;
  T* c;
  T alpha, beta;
  const T* bias;  // at column 0 of this task, or null
  Activation act;
};

template <typename T>
struct IndirectKernel {
  int mr;
  int nr;
  const char* name;
  void (*pack_b)(int64_t kc, int64_t nc, const T* b, int64_t ldb, bool trans_b, T* dst);
  void (*run)(const IndirectTask<T>& task);
};

template <typename T>
struct GatherKernel {
  int mr;
  int nr;
  const char* name;
  void (*run)(const GatherTask<T>& task);
};

// Everything the GEMM and the convolutions take from one ISA, per dtype: the
// main tile (wide), the tile set for an output n columns wide (dense: the
// main tile, or one that pads fewer columns, e.g. 8 x 48 for n = 96 where
// 6 x 64 computes a quarter of its lanes for nothing), and the indirect and
// gather kernels, whose tiles depend on the output's size too.  Each microkernel_<isa>.cpp defines its
// namespace's gemm_kernel_table; gemm.cpp resolves the selected ISA's once
// (cpu/dispatch.h).
template <typename T>
struct GemmKernels {
  KernelSet<T> wide;
  KernelSet<T> (*dense)(int64_t n);                  // for outputs n columns wide
  IndirectKernel<T> (*indirect)(int64_t n);          // for outputs n columns wide
  GatherKernel<T> (*gather)(int64_t m, int64_t n);   // for an m x n C
  void (*row)(const RowTask<T>& task);               // m = 1 (gemm/row.h)
};

namespace portable { template <typename T> GemmKernels<T> gemm_kernel_table(); }
namespace avx2 { template <typename T> GemmKernels<T> gemm_kernel_table(); }
namespace avx512 { template <typename T> GemmKernels<T> gemm_kernel_table(); }

// The selected ISA's kernels (gemm.cpp).
template <typename T>
const GemmKernels<T>& gemm_kernels();

}  // namespace fastnn::cpu::gemm_impl
