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

// One wide set (the main tile) and one narrow set (one vector of columns,
// for outputs with few columns) per ISA and dtype.
#define FASTNN_DECLARE_GEMM_KERNELS(ns)                  \
  namespace ns {                                         \
  KernelSet<float> gemm_kernels_f32(bool narrow);        \
  KernelSet<double> gemm_kernels_f64(bool narrow);       \
  }
FASTNN_DECLARE_GEMM_KERNELS(portable)
FASTNN_DECLARE_GEMM_KERNELS(avx2)
FASTNN_DECLARE_GEMM_KERNELS(avx512)
#undef FASTNN_DECLARE_GEMM_KERNELS

}  // namespace fastnn::cpu::gemm_impl
