// Blocked GEMM driver (BLIS-style loop nests) with a fused epilogue.
//
// Packed A (the usual case):
//   for ic in this thread's rows by MC:     A block mc x kc  (private, L3)
//     for pc in K by KC:                    pack the A block once
//       for jc in this thread's columns by NC:
//         pack the B block (kc x nc, L2)
//         for each A micro-panel (kc x MR, L1):
//           for each B micro-panel (kc x NR, streams from L2): micro-kernel
// A read in place (skinny outputs, where packing A costs as much as the
// multiply):
//   for jc by NC: for pc by KC: pack B; for ic by MC (the A rows, L2):
//     for each B micro-panel (kc x NR): for each row tile: micro-kernel
//
// KC is sized so one B micro-panel (KC x NR) takes about twice L1 (deeper K
// blocks mean fewer passes over C), NC so the B block takes half of L2 and
// MC so the packed A block stays a few MiB (each A element is packed once,
// each B element once per A block); the in-place A rows of one block take a
// sixth of L2.  K is split into equal blocks rather than KC plus a remainder.
// Measured on Sapphire Rapids, one thread, n = 2048: a B block sized to L3
// with the A block in L2 (B micro-panel outermost) ran at 140 GFLOP/s, this
// nest at 149-150; the textbook half-L1 B micro-panel was 5-10% slower.
//
// Threads form a tm x tn grid over (row panels, column panels), chosen to
// minimise the tiles of the busiest thread plus what it packs or reads: big-M
// problems split rows (each thread packs its own copy of B, so no thread
// waits for another), skinny ones (M = one batch) split columns, so each
// thread packs only the B panels it uses.  Tiny problems run on the calling
// thread: a fork costs more than they do.
#include "cpu/gemm/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/float_mode.h"
#include "common/parallel.h"
#include "cpu/dispatch.h"
#include "cpu/gemm/gemm_kernels.h"
#include "cpu/machine.h"

namespace fastnn::cpu {
namespace {

using gemm_impl::KernelSet;

// Below this many FLOPs one thread beats a fork/join (measured: bench_gemm.py).
constexpr double kMinParallelFlops = 1.5e6;
// A is read in place (not packed) when a thread multiplies it by at most
// this many columns, and row-major B when by at most this many rows (four
// 6-row tiles): below that, packing costs about as much as the passes it would
// speed up.  An in-place B is strided, one row per page on wide matrices, and
// each A micro-panel walks all of it again, so beyond a few row tiles packing
// wins: Intel Xeon (AVX-512), 2 threads, 24 rows against 112, 64 x 128 x 3136
// 243 against 324 us, 64 x 64 x 3136 (TN) 120 against 152 us, 512^2 x 64 rows
// 142 against 155 us; at 16 rows and fewer the in-place read is 5-20% ahead.
constexpr int64_t kInPlaceMaxCols = 256;
// ... except a transposed A (A stored k x m) whose rows are a page or more apart: read in
// place, every k step of a micro-panel is a new page.  It is packed wherever a thread
// takes two panels or more of C over several K blocks, or four panels or more: Intel Xeon
// (AVX-512), 2 threads, TN products, 1024 x 256 x 6272 (a 1x1 1024->256 layer's weight
// gradient at batch 32) 14.2 -> 9.8 ms, 2048 x 128 x 3136 1.32x, 1152 x 256 x 784 1.16x,
// 1024 x 192 x 1024 1.44x; with two panels and one K block (3136 x 128 x 64-512) the
// in-place read stays level or ahead (0.90-0.98x packed).
constexpr int64_t kInPlaceMaxTransposedStride = 4096;
constexpr int64_t kInPlaceMaxRows = 24;
// A packed A block takes at most this much, and at most a quarter of L3 (each element is
// packed once).
constexpr int64_t kPackedABytes = int64_t(4) << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

template <typename T>
struct Plan {
  KernelSet<T> ks;
  int64_t kc;
  int64_t mc;         // rows per block of a packed A
  int64_t mc_inplace; // rows per block of an A read in place
  int64_t nc;
  int threads;
  int64_t b_elems;  // per thread: packed B panels of one block
  int64_t a_elems;  // per thread: packed A block (or the in-place tail panel)
};

struct Grid {
  int tm, tn;
  bool pack_a, pack_b;
};

// Packing cost per element, in units of one FMA-port cycle: a straight copy
// is cheap, a transposing copy (row-major A, trans B) is not.
constexpr double kCopyCost = 0.25;
constexpr double kTransposeCost = 1.0;
// An operand read in place is fetched from L3 by every thread that uses it
// (2 threads, A/B against leaving it out: 256^3 +3-6%, the seed's
// 3136x64x128 weight gradient +12-14%, which had split columns).
constexpr double kInPlaceReadCost = 0.5;

// The tm x tn split of `threads` that finishes soonest: the busiest thread's
// tiles plus what it packs or reads in place.  Every thread packs its own B
// panels and A rows, so a column split repeats A's packing (or reading) in
// every thread and a row split repeats B's; no thread waits for another.
template <typename T>
Grid choose_grid(const GemmArgs<T>& g, const Plan<T>& p, int threads) {
  const int64_t mr = p.ks.mr, nr = p.ks.nr;
  const int64_t tiles_m = ceil_div(g.m, mr), tiles_n = ceil_div(g.n, nr);
  const double fma_per_cycle = 2.0 * p.ks.lanes;
  Grid best{1, 1, true, true};
  double best_cost = -1;
  for (int tm = threads; tm >= 1; --tm) {
    if (threads % tm != 0) continue;
    const int tn = threads / tm;
    const int64_t my_tiles_m = ceil_div(tiles_m, tm), my_tiles_n = ceil_div(tiles_n, tn);
    const int64_t my_cols = std::min(my_tiles_n * nr, p.nc);
    const bool pack_a = my_cols > kInPlaceMaxCols ||
                        (g.trans_a && my_cols > nr && (my_cols >= 4 * nr || g.k > p.kc) &&
                         g.lda * int64_t(sizeof(T)) >= kInPlaceMaxTransposedStride);
    const bool pack_b = !g.b_packed && (g.trans_b || my_tiles_m * mr > kInPlaceMaxRows);
    const double rows = double(std::min(g.m, my_tiles_m * mr)), cols = double(std::min(g.n, my_tiles_n * nr));
    double cost = double(my_tiles_m * my_tiles_n) * double(mr * nr) * double(g.k) / fma_per_cycle;
    if (pack_b) cost += cols * double(g.k) * (g.trans_b ? kTransposeCost : kCopyCost);
    else if (!g.b_packed) cost += cols * double(g.k) * kInPlaceReadCost;
    if (pack_a) cost += rows * double(g.k) * (g.trans_a ? kCopyCost : kTransposeCost);
    else cost += rows * double(g.k) * kInPlaceReadCost;
    if (best_cost < 0 || cost < best_cost) {
      best = Grid{tm, tn, pack_a, pack_b};
      best_cost = cost;
    }
  }
  return best;
}

template <typename T>
Plan<T> make_plan(const GemmArgs<T>& g, int num_threads) {
  const gemm_impl::GemmKernels<T>& kernels = gemm_impl::gemm_kernels<T>();
  Plan<T> p{};
  p.ks = kernels.dense(g.n);
  const int64_t mr = p.ks.mr, nr = p.ks.nr;
  const CacheSizes& cs = cache_sizes();
  const int64_t k = std::max<int64_t>(g.k, 1);

  const int64_t elem = sizeof(T);
  const int64_t kc_max = std::clamp<int64_t>(cs.l1d * 2 / (nr * elem), 128, 768);
  // Up to twice that where it makes K one block, so C is written once and never read
  // back: 6272 x 512 x 512 (a pointwise 512->512 layer at batch 32), 2 threads, Intel
  // Xeon, 48 KiB L1d: 11.3 -> 10.5 ms.  At K = 1024, two blocks of 512 ran 5% slower
  // than three of 342.
  const int64_t kc_one_block = std::min<int64_t>(2 * kc_max, 768);
  p.kc = k <= kc_one_block ? k : ceil_div(k, ceil_div(k, kc_max));
  const int64_t rows = round_up(g.m, mr);
  const int64_t mc_inplace = std::max<int64_t>(mr, cs.l2 / 6 / (p.kc * elem) / mr * mr);
  p.mc_inplace = std::min(mc_inplace, rows);
  const int64_t mc_packed = std::max<int64_t>(mr, std::min(kPackedABytes, cs.l3 / 4) / (p.kc * elem) / mr * mr);
  p.mc = std::min(mc_packed, rows);
  const int64_t nc_max = std::max<int64_t>(nr, cs.l2 / 2 / (p.kc * elem) / nr * nr);
  p.nc = std::min(round_up(g.n, nr), nc_max);

  const int64_t tiles = ceil_div(g.m, mr) * ceil_div(g.n, nr);
  const double flops = 2.0 * double(g.m) * double(g.n) * double(g.k);
  p.threads = flops < kMinParallelFlops ? 1 : int(std::min<int64_t>(num_threads, tiles));
  p.threads = std::max(p.threads, 1);

  // Sized for the worst split (one thread doing a whole block), so a team
  // smaller than planned still fits.
  const int64_t align = 64 / int64_t(sizeof(T));
  p.b_elems = round_up(p.kc * p.nc, align);
  p.a_elems = round_up(p.kc * p.mc, align);
  return p;
}

template <typename T>
size_t plan_bytes(const Plan<T>& p) {
  return sizeof(T) * size_t(p.threads * (p.b_elems + p.a_elems));
}

// The epilogue on one element, for the paths without register tiles:
// act(product + beta*c + bias[j]), with c ignored (even NaN) when beta == 0.
template <typename T>
T finish_element(const GemmArgs<T>& g, T product, T c, int64_t j) {
  T v = g.beta == T(0) ? product : g.beta * c + product;
  if (g.bias != nullptr) v += g.bias[j];
  switch (g.act) {
    case Activation::relu: return v < T(0) ? T(0) : v;
    case Activation::sigmoid: return T(1) / (T(1) + std::exp(-v));
    case Activation::tanh: return std::tanh(v);
    case Activation::none: break;
  }
  return v;
}

// K == 0: C = act(beta*C + bias), a plain pass.
template <typename T>
void scale_only(const GemmArgs<T>& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    T* row = g.c + i * g.ldc;
    for (int64_t j = 0; j < g.n; ++j) row[j] = finish_element(g, T(0), row[j], j);
  }
}

// m = n = 1: a dot product (sum_of_squares is 1 x k by k x 1), which the
// register tiles would run on one lane of a vector, from a packed copy: 3 ms
// for k = 401,408 against 40 us here.  Contiguous operands take four vector
// partial sums (lowered to whatever registers this file is built for), strided
// ones a scalar loop; one thread, in a fixed order, so results are reproducible.
template <typename T>
void dot_only(const GemmArgs<T>& g) {
  const int64_t step_a = g.trans_a ? g.lda : 1;  // op(A)(0, p) to op(A)(0, p + 1)
  const int64_t step_b = g.trans_b ? 1 : g.ldb;  // op(B)(p, 0) to op(B)(p + 1, 0)
  T sum = T(0);
  int64_t p = 0;
  if (step_a == 1 && step_b == 1) {
    typedef T V __attribute__((vector_size(32)));
    constexpr int64_t L = 32 / static_cast<int64_t>(sizeof(T));
    V acc[4] = {};
    for (; p + 4 * L <= g.k; p += 4 * L) {
      for (int64_t u = 0; u < 4; ++u) {
        V x, y;
        std::memcpy(&x, g.a + p + u * L, sizeof x);
        std::memcpy(&y, g.b + p + u * L, sizeof y);
        acc[u] += x * y;
      }
    }
    const V total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (int64_t j = 0; j < L; ++j) sum += total[j];
  }
  for (; p < g.k; ++p) sum += g.a[p * step_a] * g.b[p * step_b];
  g.c[0] = finish_element(g, g.alpha * sum, g.c[0], 0);
}

// m = 1 (one example through a dense layer): the per-ISA row kernel (gemm/row.h)
// streams B as it lies.  Where B is big enough for a fork to pay (kRowSplitBytes),
// threads take contiguous column ranges (rows of a transposed B), so each reads its
// own part of B, which stays in its core's L2 from call to call.  Every output is
// computed alike whatever the split, so results do not depend on the thread count.
// Intel Xeon (AVX-512), 2 threads, 1 x 3136 times 3136 x 128: 15 us (the register
// tiles 36, OpenBLAS 22); times a transposed 128 x 3136: 12 us (tiles 83, OpenBLAS 19).
constexpr int64_t kRowSplitBytes = int64_t(256) << 10;

template <typename T>
bool row_fits(const GemmArgs<T>& g) {
  return g.m == 1 && (!g.trans_b || !g.trans_a || g.lda == 1);
}

template <typename T>
void row_only(const GemmArgs<T>& g, int num_threads) {
  gemm_impl::RowTask<T> base{g.n, g.k, g.a, g.trans_a ? g.lda : 1, g.b, g.ldb, g.trans_b, g.c,
                             g.alpha, g.beta, g.bias, g.act};
  const auto& kernels = gemm_impl::gemm_kernels<T>();
  const int64_t unit = g.trans_b ? 4 : kernels.wide.lanes;  // columns a split keeps together
  const int64_t units = ceil_div(g.n, unit);
  const bool split = int64_t(sizeof(T)) * g.n * g.k >= kRowSplitBytes;
  const int team = split ? int(std::min<int64_t>(num_threads, units)) : 1;
  auto part = [&](int tid, int parts) {
    const int64_t j0 = std::min(g.n, units * tid / parts * unit);
    const int64_t j1 = std::min(g.n, units * (tid + 1) / parts * unit);
    if (j1 <= j0) return;
    gemm_impl::RowTask<T> t = base;
    t.nc = j1 - j0;
    t.b = g.trans_b ? g.b + j0 * g.ldb : g.b + j0;
    t.c = g.c + j0;
    t.bias = g.bias == nullptr ? nullptr : g.bias + j0;
    kernels.row(t);
  };
  if (team <= 1) {
    FloatModeGuard mode;
    part(0, 1);
    return;
  }
#ifdef FASTNN_OPENMP
#pragma omp parallel num_threads(team)
  {
    FloatModeGuard mode;
    part(omp_get_thread_num(), omp_get_num_threads());
  }
#else
  FloatModeGuard mode;
  part(0, 1);
#endif
}

// One thread's share of the loop nest, on its own rows and column panels
// with its own packed buffers.
template <typename T>
void run_thread(const GemmArgs<T>& g, const Plan<T>& p, T* workspace, int tid, int team) {
  const int64_t mr = p.ks.mr, nr = p.ks.nr;
  const Grid grid = choose_grid(g, p, team);
  const int ti = tid / grid.tn, tj = tid % grid.tn;
  const int64_t tiles_m = ceil_div(g.m, mr);
  const int64_t row0 = std::min(g.m, tiles_m * ti / grid.tm * mr);
  const int64_t row1 = std::min(g.m, tiles_m * (ti + 1) / grid.tm * mr);
  if (row1 <= row0) return;
  T* b_pack = workspace + int64_t(tid) * (p.b_elems + p.a_elems);
  T* a_pack = b_pack + p.b_elems;

  // This thread's columns of the block at jc: [col0, col0 + cols), or none.
  auto my_columns = [&](int64_t jc, int64_t& col0, int64_t& cols) {
    const int64_t ncb = std::min(p.nc, g.n - jc);
    const int64_t panels = ceil_div(ncb, nr);
    const int64_t q0 = panels * tj / grid.tn, q1 = panels * (tj + 1) / grid.tn;
    col0 = jc + q0 * nr;
    cols = std::min(ncb, q1 * nr) - q0 * nr;
    return q1 > q0;
  };
  // B block (k block pc, this thread's columns from col0): packed into
  // b_pack, or read in place; returns where the macro-kernel reads it.
  auto b_block = [&](int64_t pc, int64_t kcb, int64_t col0, int64_t cols) {
    if (g.b_packed) return g.b + (col0 / nr) * g.k * nr + pc * nr;  // panels g.k * nr apart
    const T* b_src = g.trans_b ? g.b + col0 * g.ldb + pc : g.b + pc * g.ldb + col0;
    if (grid.pack_b) p.ks.pack_b(kcb, cols, b_src, g.ldb, g.trans_b, b_pack);
    return b_src;
  };
  // C[ic : ic+mc, col0 : col0+cols] (+)= A block @ B block, with A packed in
  // a_pack or read in place.
  auto multiply = [&](int64_t ic, int64_t mc, int64_t pc, int64_t kcb, int64_t col0, int64_t cols,
                      const T* b_src) {
    gemm_impl::MacroTask<T> task{};
    task.mc = mc;
    task.kc = kcb;
    task.nc = cols;
    if (grid.pack_a) {
      task.a = a_pack;
    } else {
      task.a = g.trans_a ? g.a + pc * g.lda + ic : g.a + ic * g.lda + pc;
      task.lda = g.lda;
      task.trans_a = g.trans_a;
    }
    task.b = grid.pack_b ? b_pack : b_src;
    task.b_stride = g.b_packed ? g.k * nr : kcb * nr;
    task.ldb = grid.pack_b || g.b_packed ? 0 : g.ldb;
    task.b_scratch = b_pack;
    task.c = g.c + ic * g.ldc + col0;
    task.ldc = g.ldc;
    task.scratch = a_pack;
    task.ep = gemm_impl::Epilogue<T>{g.alpha, g.beta, pc == 0, pc + kcb == g.k,
                                     g.bias != nullptr ? g.bias + col0 : nullptr, g.act};
    p.ks.macro(task);
  };

  int64_t col0 = 0, cols = 0;
  if (grid.pack_a) {
    for (int64_t ic = row0; ic < row1; ic += p.mc) {
      const int64_t mc = std::min(p.mc, row1 - ic);
      for (int64_t pc = 0; pc < g.k; pc += p.kc) {
        const int64_t kcb = std::min(p.kc, g.k - pc);
        const T* a_src = g.trans_a ? g.a + pc * g.lda + ic : g.a + ic * g.lda + pc;
        p.ks.pack_a(mc, kcb, a_src, g.lda, g.trans_a, a_pack);
        for (int64_t jc = 0; jc < g.n; jc += p.nc) {
          if (!my_columns(jc, col0, cols)) continue;
          multiply(ic, mc, pc, kcb, col0, cols, b_block(pc, kcb, col0, cols));
        }
      }
    }
    return;
  }
  for (int64_t jc = 0; jc < g.n; jc += p.nc) {
    if (!my_columns(jc, col0, cols)) continue;
    for (int64_t pc = 0; pc < g.k; pc += p.kc) {
      const int64_t kcb = std::min(p.kc, g.k - pc);
      const T* b_src = b_block(pc, kcb, col0, cols);
      for (int64_t ic = row0; ic < row1; ic += p.mc_inplace) {
        multiply(ic, std::min(p.mc_inplace, row1 - ic), pc, kcb, col0, cols, b_src);
      }
    }
  }
}

template <typename T>
void check_args(const GemmArgs<T>& g) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("gemm: " + what); };
  if (g.m < 0 || g.n < 0 || g.k < 0) fail("sizes must be non-negative");
  const int64_t a_cols = g.trans_a ? g.m : g.k;
  const int64_t b_cols = g.trans_b ? g.k : g.n;
  if (g.lda < std::max<int64_t>(1, a_cols)) fail("lda is smaller than the row length of A");
  if (!g.b_packed && g.ldb < std::max<int64_t>(1, b_cols)) fail("ldb is smaller than the row length of B");
  if (g.ldc < std::max<int64_t>(1, g.n)) fail("ldc is smaller than n");
  if (g.m > 0 && g.n > 0) {
    if (g.c == nullptr) fail("C is null");
    if (g.k > 0 && (g.a == nullptr || g.b == nullptr)) fail("A or B is null");
  }
}

}  // namespace

template <typename T>
size_t gemm_workspace_bytes(const GemmArgs<T>& args, int num_threads) {
  if (args.m <= 0 || args.n <= 0 || args.k <= 0) return 0;
  return plan_bytes(make_plan(args, std::max(num_threads, 1)));
}

template <typename T>
void gemm(const GemmArgs<T>& g, void* workspace, size_t workspace_bytes, int num_threads) {
  check_args(g);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    scale_only(g);
    return;
  }
  if (g.m == 1 && g.n == 1 && !g.b_packed) {
    FloatModeGuard mode;
    dot_only(g);
    return;
  }
  if (row_fits(g) && !g.b_packed) {
    row_only(g, std::max(num_threads, 1));
    return;
  }
  const Plan<T> p = make_plan(g, std::max(num_threads, 1));
  if (workspace_bytes < plan_bytes(p) || workspace == nullptr) {
    throw std::invalid_argument("gemm: workspace is smaller than gemm_workspace_bytes()");
  }
  T* ws = static_cast<T*>(workspace);
  if (p.threads <= 1) {
    FloatModeGuard mode;
    run_thread(g, p, ws, 0, 1);
    return;
  }
#ifdef FASTNN_OPENMP
#pragma omp parallel num_threads(p.threads)
  {
    FloatModeGuard mode;
    // A team smaller than asked for (nested parallelism) still covers all
    // the work: the grid is recomputed for the team actually running.
    run_thread(g, p, ws, omp_get_thread_num(), omp_get_num_threads());
  }
#else
  FloatModeGuard mode;
  run_thread(g, p, ws, 0, 1);
#endif
}

namespace gemm_impl {

template <typename T>
const GemmKernels<T>& gemm_kernels() {
  return resolve_kernel_table(&portable::gemm_kernel_table<T>, &avx2::gemm_kernel_table<T>,
                              &avx512::gemm_kernel_table<T>);
}
template const GemmKernels<float>& gemm_kernels<float>();
template const GemmKernels<double>& gemm_kernels<double>();

}  // namespace gemm_impl

const char* gemm_kernel_name() { return gemm_impl::gemm_kernels<float>().wide.name; }

template <typename T>
GemmBlocking gemm_blocking(int64_t m, int64_t n, int64_t k, int num_threads) {
  GemmArgs<T> g;
  g.m = m;
  g.n = n;
  g.k = k;
  const Plan<T> p = make_plan(g, std::max(num_threads, 1));
  return GemmBlocking{p.ks.mr, p.ks.nr, p.kc, p.mc, p.mc_inplace, p.nc, p.threads, p.ks.name};
}

template <typename T>
int64_t gemm_packed_b_width(int64_t n) {
  return gemm_impl::gemm_kernels<T>().dense(n).nr;
}

template <typename T>
int64_t gemm_packed_b_elems(int64_t n, int64_t k) {
  const int64_t nr = gemm_packed_b_width<T>(n);
  return ceil_div(n, nr) * nr * k;
}

template <typename T>
void gemm_pack_b(int64_t n, int64_t k, const T* b, int64_t ldb, bool trans_b, T* packed) {
  if (n <= 0 || k <= 0) return;
  gemm_impl::gemm_kernels<T>().dense(n).pack_b(k, n, b, ldb, trans_b, packed);
}

template int64_t gemm_packed_b_width<float>(int64_t);
template int64_t gemm_packed_b_width<double>(int64_t);
template int64_t gemm_packed_b_elems<float>(int64_t, int64_t);
template int64_t gemm_packed_b_elems<double>(int64_t, int64_t);
template void gemm_pack_b<float>(int64_t, int64_t, const float*, int64_t, bool, float*);
template void gemm_pack_b<double>(int64_t, int64_t, const double*, int64_t, bool, double*);
template GemmBlocking gemm_blocking<float>(int64_t, int64_t, int64_t, int);
template GemmBlocking gemm_blocking<double>(int64_t, int64_t, int64_t, int);
template size_t gemm_workspace_bytes<float>(const GemmArgs<float>&, int);
template size_t gemm_workspace_bytes<double>(const GemmArgs<double>&, int);
template void gemm<float>(const GemmArgs<float>&, void*, size_t, int);
template void gemm<double>(const GemmArgs<double>&, void*, size_t, int);

}  // namespace fastnn::cpu
