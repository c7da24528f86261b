// General matrix multiply on row-major buffers, with a fused epilogue:
//
//   C = act(alpha * op(A) @ op(B) + beta * C + bias)
//
// op(A) is m x k (A stored k x m when trans_a), op(B) is k x n (B stored n x k
// when trans_b), C is m x n; every matrix is row-major with its own leading
// dimension.  bias (n entries, one per output column) may be null; act is
// applied last.  beta == 0 means C is write-only: its old contents, NaN
// included, are never read (BLAS semantics).
//
// The kernel allocates nothing: the caller hands it a workspace of at least
// gemm_workspace_bytes() bytes, aligned to 64 bytes, for the packed panels.
// Results are deterministic for a given thread count and ISA.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/activations.h"

namespace fastnn::cpu {

template <typename T>
struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const T* a = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  const T* b = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  T* c = nullptr;
  int64_t ldc = 0;
  T alpha = T(1);
  T beta = T(0);
  const T* bias = nullptr;
  Activation act = Activation::none;
  // b holds op(B) as gemm_pack_b() lays it out for this n and k (ldb and trans_b are
  // then ignored): a B that meets many A blocks is packed once, not once a call.
  bool b_packed = false;
};

// The columns of one panel of that layout for an n-wide product.
template <typename T>
int64_t gemm_packed_b_width(int64_t n);

// Elements gemm_pack_b() writes for a k x n op(B): panels of the micro-tile's columns
// for this n (as gemm() chooses it), each k rows long, the last one zero-padded.
template <typename T>
int64_t gemm_packed_b_elems(int64_t n, int64_t k);

// op(B) (k x n; B stored n x k when trans_b) into that layout, for gemm() with b_packed
// and the same n and k.
template <typename T>
void gemm_pack_b(int64_t n, int64_t k, const T* b, int64_t ldb, bool trans_b, T* packed);

// Bytes of workspace gemm() needs.  Depends only on m, n, k, T and
// num_threads, and does not decrease as m or n grow, so a caller can size
// one buffer for its largest block and reuse it for smaller ones.
template <typename T>
size_t gemm_workspace_bytes(const GemmArgs<T>& args, int num_threads);

// Throws std::invalid_argument for negative sizes, leading dimensions that
// do not fit, or a workspace smaller than gemm_workspace_bytes().
template <typename T>
void gemm(const GemmArgs<T>& args, void* workspace, size_t workspace_bytes, int num_threads);

// The blocking gemm() would use for an m x n x k product (no transposes) on num_threads:
// the micro-tile (mr x nr), the K block, the rows of a packed / in-place A block, the
// columns of a B block and the threads it would run on, all derived from cache_sizes()
// (cpu/machine.h).  For `fastnn info` and the tests.
struct GemmBlocking {
  int64_t mr, nr, kc, mc, mc_inplace, nc;
  int threads;
  const char* kernel;
};
template <typename T>
GemmBlocking gemm_blocking(int64_t m, int64_t n, int64_t k, int num_threads);

// Which micro-kernel the selected ISA uses (for `fastnn info` and the tests).
const char* gemm_kernel_name();

}  // namespace fastnn::cpu
