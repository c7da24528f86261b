// Winograd convolution (Lavin and Gray, 2016) for 3x3, stride-1, undilated
// convolutions with >= 16 channels each way, in two tile sizes: F(2x2, 3x3), whose
// 2x2 block of output pixels (a tile) takes 16 * in_c * out_c multiply-adds instead
// of 36 * in_c * out_c, and F(4x4, 3x3), whose 4x4 tile takes 36 * in_c * out_c
// instead of 144 * in_c * out_c.  The rules below choose (use_winograd_forward,
// use_winograd4).  The forward here; backward-data is this forward over dy
// (backward_data_as_forward in conv2d.cpp), its U built from the forward's weights
// turned and transposed (F(2x2, 3x3): the forward's U itself, positions permuted, read
// transposed); backward-weights is F(3x3, 2x2) or F(3x3, 4x4) over the same tiles.
//
//   U[p] = (G g G^T)[p]  for every (c, o), once per call     P x in_c x out_c
//   V[p] = (B^T d B)[p]  for every tile and c                 P x tiles x in_c
//   M[p] = V[p] @ U[p]   P GEMMs                              P x tiles x out_c
//   y    = A^T M A + bias (+ relu)                            per tile
//
// (P = 16 or 36 positions.)  The tiles go in blocks whose V and M fit in half of L2;
// each thread takes a contiguous run of blocks, its own V/M/GEMM workspace, and runs
// the GEMMs on one thread.  Where U outgrows L2 and every block would stream it again,
// the tiles go in super-blocks instead (all of a layer's tiles at 7x7-14x14), each
// thread running every tile against its own output channels of U (columns_pay).  The
// transforms are compiled per ISA (conv2d_winograd_kernels.h).
#include <algorithm>

#include "common/align.h"
#include "common/parallel.h"
#include "cpu/conv2d_algorithms.h"
#include "cpu/conv2d_winograd_table.h"
#include "cpu/dispatch.h"
#include "cpu/gemm/gemm.h"
#include "cpu/machine.h"

namespace fastnn::cpu {
namespace {

template <typename T>
const WinogradKernels<T>& winograd_kernels() {
  return resolve_kernel_table(&portable::winograd_kernel_table<T>, &avx2::winograd_kernel_table<T>,
                              &avx512::winograd_kernel_table<T>);
}

// Tiles of `size` x `size` output pixels (2: F(2x2, 3x3), 4: F(4x4, 3x3)) and their
// (size + 2)^2 positions.
struct WinogradLayout {
  int64_t size, positions;
  int64_t tiles_h, tiles_w, tiles, block, blocks, chunks;
  size_t u_bytes, v_bytes, m_bytes, gemm_bytes;
  bool split_columns = false;  // super-blocks of tiles, each GEMM split over output channels
  int64_t gemm_slots = 1;      // GEMM workspaces per slot (one per column chunk when split)
  size_t slot() const { return v_bytes + m_bytes + gemm_bytes * static_cast<size_t>(gemm_slots); }
};

template <typename T>
GemmArgs<T> block_gemm(const Conv2dShape& s, int64_t rows) {
  GemmArgs<T> g;
  g.m = rows;
  g.n = s.out_c;
  g.k = s.in_c;
  g.lda = s.in_c;
  g.ldb = s.out_c;
  g.ldc = s.out_c;
  return g;
}

template <typename T>
WinogradLayout winograd_layout(const Conv2dShape& s, int threads, int64_t size) {
  WinogradLayout l{};
  l.size = size;
  l.positions = (size + 2) * (size + 2);
  l.tiles_h = (s.out_h + size - 1) / size;
  l.tiles_w = (s.out_w + size - 1) / size;
  l.tiles = s.batch * l.tiles_h * l.tiles_w;
  const int64_t per_tile = l.positions * (s.in_c + s.out_c) * static_cast<int64_t>(sizeof(T));
  l.block = std::clamp<int64_t>(cache_sizes().l2 / 2 / per_tile, 12, 240) / 12 * 12;
  // A block for every thread where the tiles make blocks of 12 or more (a batch-1
  // image of 7x7 tiles used to be one block, on one thread).
  const int64_t wanted = std::clamp<int64_t>(l.tiles / 12, 1, threads);
  if ((l.tiles + l.block - 1) / l.block < wanted) l.block = ((l.tiles + wanted - 1) / wanted + 5) / 6 * 6;
  l.blocks = (l.tiles + l.block - 1) / l.block;
  l.chunks = chunk_count(l.blocks, 1, threads);
  l.u_bytes = align_up(l.positions * s.in_c * s.out_c * sizeof(T));
  l.v_bytes = align_up(l.positions * l.block * s.in_c * sizeof(T));
  l.m_bytes = align_up(l.positions * l.block * s.out_c * sizeof(T));
  l.gemm_bytes = align_up(gemm_workspace_bytes(block_gemm<T>(s, l.block), 1));
  return l;
}

bool winograd_shape(const Conv2dShape& s) {
  constexpr int64_t kMinChannels = 16;  // the GEMMs' inner and outer widths
  return s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dilation_h == 1 &&
         s.dilation_w == 1 && s.in_c >= kMinChannels && s.out_c >= kMinChannels;
}

// F(2x2, 3x3) against the indirect GEMM (2 threads).  Zen 4 (1 MiB L2): 1.1-1.4x at
// 32->64 (14x14, batch 64), 1.26-1.8x at 64->64 (32x32) and 128->128 (16x16, batch
// 32); but 0.77-1.07x at 128->256 (8x8, batch 32).  Intel Xeon model 207 (2 MiB L2):
// 128->256 at 8x8 1.30x / 1.15x / 1.72x (forward, backward-data, backward-weights:
// 3.73 -> 2.87, 3.81 -> 3.32, 4.92 -> 2.88 ms), but 256->256 (14x14, batch 1)
// 0.63x-1.0x and 512->512 (7x7, batch 32) 0.85-0.95x.  What separates them is
// whether the transformed weights U (16 x in_c x out_c) fit in L2: every block of
// tiles runs its 16 GEMMs against all of U, and once U spills, each block streams
// it from L3 again.
template <typename T>
bool winograd2_fits(const Conv2dShape& s) {
  return 16 * s.in_c * s.out_c * static_cast<int64_t>(sizeof(T)) <= cache_sizes().l2;
}

// F(4x4, 3x3) takes 2.25 multiplies an output pixel per (c, o) pair against F(2x2,
// 3x3)'s 4, for transforms about twice as long and 2.25x the transformed weights.
// Against F(2x2, 3x3), 2 threads, Intel Xeon model 207, forward / backward-data:
// 64->64 at 32x32 batch 32 4.65 -> 3.43 / 4.84 -> 3.25 ms; 32->64 at 14x14 batch 64
// 1.13 -> 0.96 / 1.17 -> 1.03; 128->256 at 8x8 batch 32 (U of 4.5 MiB, past L2)
// 2.87 -> 2.20 / 3.36 -> 2.69; 64->64 at 224x224 batch 1 7.46 -> 5.13.  Against the
// indirect GEMM, 512->512 at 7x7 batch 32 (U of 36 MiB): 23.5 -> 18.3 / 24.7 -> 21.4.
// It loses with few tiles: 32->64 at 14x14 batch 1 (16 tiles) 49 -> 51 us, 256->256
// at 14x14 batch 1 0.95 -> 1.36 ms, where each thread's GEMMs have a handful of rows
// against all of U.  So: 48 tiles or more, and U no larger than 64 MiB.
template <typename T>
bool use_winograd4(const Conv2dShape& s) {
  constexpr int64_t kMinTiles = 48;
  constexpr int64_t kMaxWeightBytes = int64_t(64) << 20;
  const int64_t tiles = s.batch * ((s.out_h + 3) / 4) * ((s.out_w + 3) / 4);
  return tiles >= kMinTiles && 36 * s.in_c * s.out_c * static_cast<int64_t>(sizeof(T)) <= kMaxWeightBytes;
}

// F(2x2, 3x3) with each GEMM split over output channels instead of the tiles split
// over threads, for layers too small for F(4x4, 3x3) whose U outgrows L2 while each
// thread's share of it fits: every thread transforms a share of the tiles, then runs
// all of them against its columns of U, which it packs once.  Split by tiles, each
// thread packed all of U for a handful of rows: ResNet-18's 256->256 at 14x14, batch 1
// (49 tiles, 4 MiB of U) ran at 0.63-1.0x the indirect GEMM.
template <typename T>
bool use_winograd2_columns(const Conv2dShape& s, int threads) {
  const int64_t u_bytes = 16 * s.in_c * s.out_c * static_cast<int64_t>(sizeof(T));
  return threads > 1 && !winograd2_fits<T>(s) && !use_winograd4<T>(s) && u_bytes <= threads * cache_sizes().l2;
}

// The columns-split forward hands each thread whole runs of kColumns output channels:
// a vector of float32 outputs, and the GEMM's panel width.
constexpr int64_t kColumns = 16;
inline int64_t column_blocks(const Conv2dShape& s) { return (s.out_c + kColumns - 1) / kColumns; }

// The columns split for F(4x4, 3x3) whose U outgrows L2: split by tiles, every block of
// tiles streams all of U again, so ResNet-18's 512->512 at 7x7, batch 32 (128 tiles,
// 36 MiB of U, 11 blocks of 12) moved about 400 MiB of U per call.  Split by columns over
// super-blocks of tiles, U is read once per super-block, at the price of V and M for a
// super-block in memory (each thread reads all of V).  Taken where that moves fewer
// bytes; super-blocks of at most kMaxSuperBlockBytes of V and M.  Intel Xeon (2 MiB L2),
// 2 threads, forward / backward-data: 512->512 at 7x7 batch 32 23.1 -> 13.2 / 25.6 ->
// 15.0 ms; 256->256 at 14x14 batch 32 17.7 -> 12.8 / 17.8 -> 13.2; 128->256 at 8x8
// batch 32 2.45 -> 2.05 / 2.65 -> 1.86.
constexpr int64_t kMaxSuperBlockBytes = int64_t(32) << 20;

// The columns split's tiles: super-blocks of at most kMaxSuperBlockBytes of the transformed
// input and output (V and M, or V and E), one chunk.
template <typename T>
void set_super_blocks(const Conv2dShape& s, WinogradLayout& l) {
  l.split_columns = true;
  const int64_t per_tile = l.positions * (s.in_c + s.out_c) * static_cast<int64_t>(sizeof(T));
  const int64_t bytes = l.tiles * per_tile;
  const int64_t super_blocks = std::max<int64_t>(1, (bytes + kMaxSuperBlockBytes - 1) / kMaxSuperBlockBytes);
  l.block = std::max<int64_t>(1, (l.tiles + super_blocks - 1) / super_blocks);
  l.blocks = (l.tiles + l.block - 1) / l.block;
  l.chunks = 1;
}

// The output channels of column chunk c of `chunks` (as parallel_chunks cuts the runs).
inline int64_t chunk_columns(const Conv2dShape& s, int64_t c, int64_t chunks) {
  const int64_t blocks = column_blocks(s);
  return std::min(s.out_c, blocks * (c + 1) / chunks * kColumns) - blocks * c / chunks * kColumns;
}

// Backward-weights, F(3x3, 2x2): per 16 positions p, S[p] (in_c x out_c) = the
// sum over tiles of V[p]^T E[p] (a GEMM with the tiles as its inner dimension),
// then dw = A'^T S A', A'^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1].  F(3x3, 4x4) is the
// same over 36 positions, dw = G^T S G (conv2d_winograd_kernels.h).
struct WinogradWeightsLayout {
  WinogradLayout tiles;
  size_t e_bytes, s_bytes, gemm_bytes;
  size_t slot() const {
    return tiles.v_bytes + e_bytes + s_bytes + gemm_bytes * static_cast<size_t>(tiles.gemm_slots);
  }
};

template <typename T>
GemmArgs<T> weights_gemm(const Conv2dShape& s, int64_t rows) {
  GemmArgs<T> g;
  g.m = s.in_c;
  g.n = s.out_c;
  g.k = rows;
  g.trans_a = true;  // V[p] is stored tiles x in_c
  g.lda = s.in_c;
  g.ldb = s.out_c;
  g.ldc = s.out_c;
  return g;
}

// F(3x3, 4x4) for backward-weights where F(4x4, 3x3) would run the forward, and its
// per-thread sums (36 x in_c x out_c) take at most 3x L2.  Against F(3x3, 2x2), Intel
// Xeon model 207 (2 MiB L2), 2 threads: 64->64 at 32x32 batch 32 5.55 -> 3.42 ms;
// 32->64 at 14x14 batch 64 1.40 -> 1.05; 64->64 at 224x224 batch 1 8.6 -> 5.4;
// 128->128 at 16x16 (sums of 2.25 MiB) 4.78 -> 3.57; 128->256 at 8x8 (4.5 MiB) 2.86
// -> 2.66; but 512->512 at 7x7 batch 32 (36 MiB) 26.2 -> 38.9 against the shared
// GEMM, the sums streamed from memory for every block of tiles.
template <typename T>
bool use_winograd4_weights(const Conv2dShape& s) {
  return use_winograd4<T>(s) && 36 * s.in_c * s.out_c * static_cast<int64_t>(sizeof(T)) <= 3 * cache_sizes().l2;
}

// Where the sums outgrow that, F(3x3, 4x4) split over output channels instead: V and E of
// a super-block of tiles (threads over tiles), then each thread's columns of S through
// the GEMMs over all the super-block's tiles, so S is written once per super-block, not
// once per block of 12 tiles.  Against the GEMM paths (Intel Xeon, 2 threads): 512->512
// at 7x7 batch 32 25.7 -> 17.6 ms, 256->256 at 14x14 batch 32 30.5 -> 14.6, batch 8
// 7.8 -> 4.0.
template <typename T>
bool use_winograd4_weights_columns(const Conv2dShape& s) {
  return use_winograd4<T>(s) && !use_winograd4_weights<T>(s);
}

// F(3x3, 2x2) the same way for layers with too few tiles for F(4x4, 3x3) whose sums
// (16 x in_c x out_c) outgrow L2: 48 of its tiles or more (it loses with fewer, where
// writing and reading the sums costs more than the multiplies it saves), up to
// kMaxColumnSumsBytes of sums.  Against the im2col GEMM, Intel Xeon, 2 threads:
// ResNet-18's 256->256 at 14x14, batch 1 (49 tiles) 1.085 -> 0.840 ms, 512->512 at 14x14
// 3.36 -> 3.12; but 512->512 at 7x7, batch 1 and 2 (16 and 32 tiles) 0.98 -> 1.63 and
// 1.71 -> 2.22.
constexpr int64_t kMaxColumnSumsBytes = int64_t(64) << 20;

template <typename T>
bool use_winograd2_weights_columns(const Conv2dShape& s) {
  constexpr int64_t kMinTiles = 48;
  const int64_t tiles = s.batch * ((s.out_h + 1) / 2) * ((s.out_w + 1) / 2);
  return !winograd2_fits<T>(s) && !use_winograd4<T>(s) && tiles >= kMinTiles &&
         16 * s.in_c * s.out_c * static_cast<int64_t>(sizeof(T)) <= kMaxColumnSumsBytes;
}

template <typename T>
WinogradWeightsLayout winograd_weights_layout(const Conv2dShape& s, int threads) {
  WinogradWeightsLayout l{};
  const bool four = use_winograd4_weights<T>(s) || use_winograd4_weights_columns<T>(s);
  const bool columns = use_winograd4_weights_columns<T>(s) || use_winograd2_weights_columns<T>(s);
  l.tiles = winograd_layout<T>(s, threads, four ? 4 : 2);
  WinogradLayout& tl = l.tiles;
  const int64_t positions = tl.positions;
  if (columns) {
    set_super_blocks<T>(s, tl);
    tl.v_bytes = align_up(positions * tl.block * s.in_c * sizeof(T));
    tl.gemm_slots = chunk_count(column_blocks(s), 1, threads);
  }
  l.e_bytes = align_up(positions * tl.block * s.out_c * sizeof(T));
  l.s_bytes = align_up(positions * s.in_c * s.out_c * sizeof(T));
  const int64_t last = std::max<int64_t>(1, tl.tiles - (tl.blocks - 1) * tl.block);
  // Sized for the widest column chunk (the GEMM's kernel follows n) and both row counts.
  l.gemm_bytes = 0;
  for (int64_t c = 0; c < tl.gemm_slots; ++c) {
    for (const int64_t rows : {tl.block, last}) {
      GemmArgs<T> g = weights_gemm<T>(s, rows);
      if (columns) g.n = chunk_columns(s, c, tl.gemm_slots);
      l.gemm_bytes = std::max(l.gemm_bytes, align_up(gemm_workspace_bytes(g, 1)));
    }
  }
  return l;
}

}  // namespace

// Backward-weights by F(3x3, 4x4) or F(3x3, 2x2), each where its rule above holds
// (F(3x3, 2x2) through 512->512 at 7x7 and 256->256 at 14x14: 0.93x and 0.94x
// PyTorch, against 1.02x and 1.26x through the GEMM paths).
template <typename T>
bool use_winograd_backward_weights(const Conv2dShape& s) {
  return winograd_shape(s) && (winograd2_fits<T>(s) || use_winograd4_weights<T>(s) ||
                               use_winograd4_weights_columns<T>(s) || use_winograd2_weights_columns<T>(s));
}

template <typename T>
bool use_winograd_forward(const Conv2dShape& s, int threads) {
  return winograd_shape(s) && (winograd2_fits<T>(s) || use_winograd4<T>(s) || use_winograd2_columns<T>(s, threads));
}

template <typename T>
size_t winograd_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  const WinogradWeightsLayout l = winograd_weights_layout<T>(s, threads);
  return l.slot() * static_cast<size_t>(std::max<int64_t>(l.tiles.chunks, 1));
}

template <typename T>
void winograd_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                               void* workspace, int threads) {
  const WinogradWeightsLayout l = winograd_weights_layout<T>(s, threads);
  const WinogradLayout& tl = l.tiles;
  const int64_t co = s.in_c * s.out_c;
  if (tl.tiles == 0) {
    std::fill(dw_hwio, dw_hwio + 9 * co, T(0));
    return;
  }
  auto* base = static_cast<unsigned char*>(workspace);
  auto sums = [&](int64_t chunk) {
    return reinterpret_cast<T*>(base + static_cast<size_t>(chunk) * l.slot() + tl.v_bytes + l.e_bytes);
  };
  const WinogradKernels<T>& kernels = winograd_kernels<T>();
  const bool four = tl.size == 4;
  const auto input_tiles = four ? kernels.input_tiles4 : kernels.input_tiles;
  const auto dy_tiles = four ? kernels.dy_tiles4 : kernels.dy_tiles;
  const int64_t v_stride = tl.block * s.in_c, e_stride = tl.block * s.out_c;
  if (tl.split_columns) {
    // Super-blocks of tiles; within each, the threads over tiles for V and E, then over
    // runs of output channels for S's columns.  Every S element sums its tiles in one
    // order whatever the thread count.
    T* v = reinterpret_cast<T*>(base);
    T* e = reinterpret_cast<T*>(base + tl.v_bytes);
    T* sum = sums(0);
    unsigned char* gemm_ws = base + tl.v_bytes + l.e_bytes + l.s_bytes;
    for (int64_t b = 0; b < tl.blocks; ++b) {
      const int64_t b0 = b * tl.block, b1 = std::min(tl.tiles, b0 + tl.block);
      parallel_for(b0, b1, 1, threads, [&](int64_t t0, int64_t t1) {
        input_tiles(s, x_nhwc, tl.tiles_h, tl.tiles_w, t0, t1, v + (t0 - b0) * s.in_c, v_stride);
        dy_tiles(s, dy_nhwc, tl.tiles_h, tl.tiles_w, t0, t1, e + (t0 - b0) * s.out_c, e_stride);
      });
      parallel_chunks(0, column_blocks(s), 1, threads, [&](int64_t chunk, int64_t c0, int64_t c1) {
        const int64_t o0 = c0 * kColumns, o1 = std::min(s.out_c, c1 * kColumns);
        for (int64_t p = 0; p < tl.positions; ++p) {
          GemmArgs<T> g = weights_gemm<T>(s, b1 - b0);
          g.n = o1 - o0;
          g.a = v + p * v_stride;
          g.b = e + p * e_stride + o0;
          g.c = sum + p * co + o0;
          g.beta = b == 0 ? T(0) : T(1);
          gemm(g, gemm_ws + static_cast<size_t>(chunk) * l.gemm_bytes, l.gemm_bytes, 1);
        }
      });
    }
  } else {
    run_chunks(0, tl.blocks, tl.chunks, [&](int64_t chunk, int64_t b0, int64_t b1) {
      unsigned char* slot = base + static_cast<size_t>(chunk) * l.slot();
      T* v = reinterpret_cast<T*>(slot);
      T* e = reinterpret_cast<T*>(slot + tl.v_bytes);
      T* sum = sums(chunk);
      void* gemm_ws = slot + tl.v_bytes + l.e_bytes + l.s_bytes;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = b * tl.block, t1 = std::min(tl.tiles, t0 + tl.block), rows = t1 - t0;
        input_tiles(s, x_nhwc, tl.tiles_h, tl.tiles_w, t0, t1, v, v_stride);
        dy_tiles(s, dy_nhwc, tl.tiles_h, tl.tiles_w, t0, t1, e, e_stride);
        for (int64_t p = 0; p < tl.positions; ++p) {
          GemmArgs<T> g = weights_gemm<T>(s, rows);
          g.a = v + p * v_stride;
          g.b = e + p * e_stride;
          g.c = sum + p * co;
          g.beta = b == b0 ? T(0) : T(1);
          gemm(g, gemm_ws, l.gemm_bytes, 1);
        }
      }
    });
  }
  // The chunks' sums in chunk order (deterministic for a thread count), then A'^T S A'
  // (G^T S G for F(3x3, 4x4)), the threads over runs of (c, o) pairs.
  T* total = sums(0);
  const auto finish = four ? kernels.weight_gradient_tiles4 : kernels.weight_gradient_tiles;
  parallel_for(0, co, int64_t(1) << 12, threads, [&](int64_t k0, int64_t k1) {
    for (int64_t c = 1; c < tl.chunks; ++c) {
      const T* part = sums(c);
      for (int64_t p = 0; p < tl.positions; ++p) {
        for (int64_t k = k0; k < k1; ++k) total[p * co + k] += part[p * co + k];
      }
    }
    finish(co, k0, k1, total, dw_hwio);
  });
}

namespace {

template <typename T>
bool columns_pay(const Conv2dShape& s, const WinogradLayout& l, int threads) {
  if (static_cast<int64_t>(l.u_bytes) <= cache_sizes().l2) return false;
  const int64_t elem = sizeof(T), tiles = l.tiles;
  const int64_t v = l.positions * tiles * s.in_c * elem, m = l.positions * tiles * s.out_c * elem;
  const int64_t super_blocks = (v + m + kMaxSuperBlockBytes - 1) / kMaxSuperBlockBytes;
  const double blocks_traffic = double(l.blocks) * double(l.u_bytes);
  const double columns_traffic =
      double(super_blocks) * double(l.u_bytes) + double(1 + threads) * double(v) + 2.0 * double(m);
  return columns_traffic < blocks_traffic;
}

// The split layout: super-blocks of `block` tiles, one GEMM workspace per column chunk.
template <typename T>
WinogradLayout split_columns_layout(const Conv2dShape& s, WinogradLayout l, int threads) {
  set_super_blocks<T>(s, l);
  l.v_bytes = align_up(l.positions * l.block * s.in_c * sizeof(T));
  l.m_bytes = align_up(l.positions * l.block * s.out_c * sizeof(T));
  // One GEMM workspace per chunk parallel_chunks cuts, sized for the widest: the GEMM's
  // kernel (and so its workspace) follows n; the last super-block's rows as well.
  const int64_t chunks = chunk_count(column_blocks(s), 1, threads);
  const int64_t last = l.tiles - (l.blocks - 1) * l.block;
  l.gemm_slots = chunks;
  l.gemm_bytes = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    for (const int64_t rows : {l.block, last}) {
      GemmArgs<T> g = block_gemm<T>(s, rows);
      g.n = chunk_columns(s, c, chunks);
      l.gemm_bytes = std::max(l.gemm_bytes, align_up(gemm_workspace_bytes(g, 1)));
    }
  }
  return l;
}

template <typename T>
WinogradLayout forward_layout(const Conv2dShape& s, int threads) {
  if (use_winograd2_columns<T>(s, threads)) {
    return split_columns_layout<T>(s, winograd_layout<T>(s, threads, 2), threads);
  }
  const WinogradLayout l = winograd_layout<T>(s, threads, use_winograd4<T>(s) ? 4 : 2);
  return columns_pay<T>(s, l, threads) ? split_columns_layout<T>(s, l, threads) : l;
}

// The GEMM's B for position p and output channels from o0: U[p] of this problem, or, for
// backward-data by F(2x2, 3x3) (u_turned), the forward's U of the layer it turns.  G J =
// P G for F(2x2, 3x3)'s G (J reverses the 3 taps, P swaps rows 0 and 3), so the turned
// window's U is the forward's with positions 0 and 3 swapped in each dimension, read
// with (c, o) transposed: the forward's cheap transform and a transposing pack instead
// of the turned transform (F(4x4, 3x3) has no such permutation: its points 2 and -2 turn
// into 1/2 and -1/2).
template <typename T>
void set_gemm_b(GemmArgs<T>& g, const Conv2dShape& s, const T* u, bool u_turned, int64_t p, int64_t o0) {
  const int64_t co = s.in_c * s.out_c;
  if (!u_turned) {
    g.b = u + p * co + o0;
    return;
  }
  auto swap = [](int64_t i) { return i == 0 ? int64_t(3) : i == 3 ? int64_t(0) : i; };
  const int64_t q = 4 * swap(p / 4) + swap(p % 4);
  g.trans_b = true;
  g.b = u + q * co + o0 * s.in_c;  // the forward's pair (c, o) = this problem's (o, c)
  g.ldb = s.in_c;
}

// U packed for the GEMMs (gemm_pack_b's layout, so no GEMM packs it again): one region
// per column chunk the GEMMs take (one for the tiles split), each chunk's positions
// packed_u_elems apart.
inline int64_t packed_u_chunks(const WinogradLayout& l) { return l.split_columns ? l.gemm_slots : 1; }

inline void packed_u_columns(const Conv2dShape& s, const WinogradLayout& l, int64_t chunk, int64_t& o0,
                             int64_t& o1) {
  if (!l.split_columns) {
    o0 = 0;
    o1 = s.out_c;
    return;
  }
  const int64_t blocks = column_blocks(s), chunks = packed_u_chunks(l);
  o0 = blocks * chunk / chunks * kColumns;
  o1 = std::min(s.out_c, blocks * (chunk + 1) / chunks * kColumns);
}

template <typename T>
int64_t packed_u_elems(const Conv2dShape& s, const WinogradLayout& l, int64_t chunk) {
  int64_t o0, o1;
  packed_u_columns(s, l, chunk, o0, o1);
  return gemm_packed_b_elems<T>(o1 - o0, s.in_c);
}

// Where chunk's region starts, in elements from the first.
template <typename T>
int64_t packed_u_offset(const Conv2dShape& s, const WinogradLayout& l, int64_t chunk) {
  int64_t offset = 0;
  for (int64_t c = 0; c < chunk; ++c) offset += l.positions * packed_u_elems<T>(s, l, c);
  return offset;
}

template <typename T>
size_t packed_u_bytes(const Conv2dShape& s, const WinogradLayout& l) {
  return align_up(static_cast<size_t>(packed_u_offset<T>(s, l, packed_u_chunks(l))) * sizeof(T));
}

// The forward's U straight into that layout: for every input channel c and panel of
// output channels, weight_tiles over the panel's pairs (c, o), its positions a region
// apart; the threads over (chunk, c), so in the columns split each thread packs the
// columns its GEMMs take.  Against transforming U and packing it in each GEMM,
// ResNet-18's 256->256 at 14x14, batch 1, had spent 30% of its forward there.
template <typename T>
void pack_forward_u(const Conv2dShape& s, const WinogradLayout& l, const WinogradKernels<T>& kernels,
                    const T* w_hwio, T* packed, int threads) {
  const auto weight_tiles = l.size == 4 ? kernels.weight_tiles4 : kernels.weight_tiles;
  const int64_t chunks = packed_u_chunks(l), co = s.in_c * s.out_c;
  parallel_for(0, chunks * s.in_c, 1, threads, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t chunk = i / s.in_c, c = i % s.in_c;
      int64_t o0, o1;
      packed_u_columns(s, l, chunk, o0, o1);
      const int64_t nr = gemm_packed_b_width<T>(o1 - o0), pe = packed_u_elems<T>(s, l, chunk);
      T* region = packed + packed_u_offset<T>(s, l, chunk);
      for (int64_t j = o0; j < o1; j += nr) {
        const int64_t nb = std::min(nr, o1 - j);
        T* row = region + (j - o0) / nr * s.in_c * nr + c * nr;
        weight_tiles(co, pe, 0, nb, w_hwio + c * s.out_c + j, row);
        if (nb < nr) {
          for (int64_t p = 0; p < l.positions; ++p) std::fill(row + p * pe + nb, row + p * pe + nr, T(0));
        }
      }
    }
  });
}

// Whether the forward packs U once.  In the columns split, only where a thread's packed
// columns fit its L2 until its GEMMs read them: ResNet-18's 512->512 at 7x7, batch 32
// (18 MiB of them a thread) ran 0.92-0.94x packed so, its GEMMs then reading B from
// memory in the middle of their FMAs instead of through their own packing.
template <typename T>
bool forward_packs_u(const Conv2dShape& s, const WinogradLayout& l) {
  if (!l.split_columns) return true;
  const int64_t bytes = l.positions * packed_u_elems<T>(s, l, 0) * static_cast<int64_t>(sizeof(T));
  return bytes <= cache_sizes().l2;
}

// Backward-data's U (unpacked, possibly turned: set_gemm_b) packed for the tiles split.
template <typename T>
void pack_u(const Conv2dShape& s, const WinogradLayout& l, const T* u, bool u_turned, T* packed, int threads) {
  const int64_t pe = packed_u_elems<T>(s, l, 0);
  parallel_for(0, l.positions, 1, threads, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      GemmArgs<T> g = block_gemm<T>(s, 1);
      set_gemm_b(g, s, u, u_turned, p, 0);
      gemm_pack_b(s.out_c, s.in_c, g.b, g.ldb, g.trans_b, packed + p * pe);
    }
  });
}

// The columns-split forward, per super-block of tiles: V of its tiles (threads over
// tiles), then each thread's output channels through the GEMMs and the output transform.
template <typename T>
void winograd_forward_columns(const Conv2dShape& s, const WinogradLayout& l, const WinogradKernels<T>& kernels,
                              const T* x_nhwc, const T* u, bool u_turned, const T* packed, const T* bias,
                              bool relu, T* y_nhwc, unsigned char* slot, int threads) {
  const bool four = l.size == 4;
  const auto input_tiles = four ? kernels.input_tiles4 : kernels.input_tiles;
  const auto output_tiles = four ? kernels.output_tiles4 : kernels.output_tiles;
  T* v = reinterpret_cast<T*>(slot);
  T* m = reinterpret_cast<T*>(slot + l.v_bytes);
  unsigned char* gemm_ws = slot + l.v_bytes + l.m_bytes;
  const int64_t v_stride = l.block * s.in_c, m_stride = l.block * s.out_c, co = s.in_c * s.out_c;
  for (int64_t b = 0; b < l.blocks; ++b) {
    const int64_t b0 = b * l.block, b1 = std::min(l.tiles, b0 + l.block);
    parallel_for(b0, b1, 1, threads, [&](int64_t t0, int64_t t1) {
      input_tiles(s, x_nhwc, l.tiles_h, l.tiles_w, t0, t1, v + (t0 - b0) * s.in_c, v_stride);
    });
    parallel_chunks(0, column_blocks(s), 1, threads, [&](int64_t chunk, int64_t c0, int64_t c1) {
      const int64_t o0 = c0 * kColumns, o1 = std::min(s.out_c, c1 * kColumns);
      const T* region = packed != nullptr ? packed + packed_u_offset<T>(s, l, chunk) : nullptr;
      const int64_t region_stride = packed != nullptr ? packed_u_elems<T>(s, l, chunk) : 0;
      for (int64_t p = 0; p < l.positions; ++p) {
        GemmArgs<T> g = block_gemm<T>(s, b1 - b0);
        g.n = o1 - o0;
        g.a = v + p * v_stride;
        if (packed != nullptr) {
          g.b = region + p * region_stride;
          g.b_packed = true;
        } else {
          set_gemm_b(g, s, u, u_turned, p, o0);
        }
        g.c = m + p * m_stride + o0;
        gemm(g, gemm_ws + static_cast<size_t>(chunk) * l.gemm_bytes, l.gemm_bytes, 1);
      }
      output_tiles(s, m, m_stride, bias, relu, l.tiles_h, l.tiles_w, b0, b1, o0, o1, y_nhwc);
    });
  }
}

// The tiles-split forward: each thread a contiguous run of blocks of tiles, its own
// V, M and GEMM workspace in its slot.  Every block's GEMMs meet the same U[p], packed
// once (packed_u): the seed's 32->64 at 14x14, batch 64, had packed all of U again for
// each of its blocks of tiles.
template <typename T>
void winograd_forward_blocks(const Conv2dShape& s, const WinogradLayout& l, const WinogradKernels<T>& kernels,
                             const T* x_nhwc, const T* packed_u, const T* bias, bool relu, T* y_nhwc,
                             unsigned char* slots) {
  const bool four = l.size == 4;
  const auto input_tiles = four ? kernels.input_tiles4 : kernels.input_tiles;
  const auto output_tiles = four ? kernels.output_tiles4 : kernels.output_tiles;
  const int64_t packed_elems = packed_u_elems<T>(s, l, 0);
  run_chunks(0, l.blocks, l.chunks, [&](int64_t chunk, int64_t b0, int64_t b1) {
    unsigned char* slot = slots + static_cast<size_t>(chunk) * l.slot();
    T* v = reinterpret_cast<T*>(slot);
    T* m = reinterpret_cast<T*>(slot + l.v_bytes);
    void* gemm_ws = slot + l.v_bytes + l.m_bytes;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t t0 = b * l.block, t1 = std::min(l.tiles, t0 + l.block), rows = t1 - t0;
      input_tiles(s, x_nhwc, l.tiles_h, l.tiles_w, t0, t1, v, l.block * s.in_c);
      for (int64_t p = 0; p < l.positions; ++p) {
        GemmArgs<T> g = block_gemm<T>(s, rows);
        g.a = v + p * l.block * s.in_c;
        g.b = packed_u + p * packed_elems;
        g.b_packed = true;
        g.c = m + p * l.block * s.out_c;
        gemm(g, gemm_ws, l.gemm_bytes, 1);
      }
      output_tiles(s, m, l.block * s.out_c, bias, relu, l.tiles_h, l.tiles_w, t0, t1, 0, s.out_c, y_nhwc);
    }
  });
}

// F(4x4, 3x3)'s U of backward-data's transposed problem t straight from the forward's
// weights (t's pair (c, o) is the forward's (o, c), the window turned half-way), the
// threads over runs of the forward's output channels.  Flipping the weights into a second
// array with a scalar blocked transpose, then transforming that, cost backward-data 4.4
// ms of 22.5 at 512 -> 512 channels (batch 32, 7x7).
template <typename T>
void flipped_weight_tiles4(const Conv2dShape& t, const WinogradKernels<T>& kernels, const T* w_hwio, T* u,
                           int threads) {
  constexpr int64_t kRun = 16;  // a whole vector of float32 lanes, two of float64
  const int64_t c_f = t.out_c, o_f = t.in_c;
  parallel_for(0, (o_f + kRun - 1) / kRun, 1, threads, [&](int64_t r0, int64_t r1) {
    kernels.turned_weight_tiles4(c_f, o_f, r0 * kRun, std::min(o_f, r1 * kRun), w_hwio, u);
  });
}

// The workspace: U unpacked (backward-data) and packed; the columns split packs a
// forward's U and reads a backward-data's unpacked, so one region serves either.
template <typename T>
size_t u_region_bytes(const Conv2dShape& s, const WinogradLayout& l) {
  const size_t packed = packed_u_bytes<T>(s, l);
  return l.split_columns ? std::max(l.u_bytes, packed) : l.u_bytes + packed;
}

// packed: U in gemm_pack_b's layout, or null (the columns split of backward-data) for u
// as set_gemm_b reads it.
template <typename T>
void winograd_run(const Conv2dShape& s, const WinogradLayout& l, const WinogradKernels<T>& kernels,
                  const T* x_nhwc, const T* u, bool u_turned, const T* packed, const T* bias, Activation act,
                  T* y_nhwc, unsigned char* slots, int threads) {
  if (l.split_columns) {
    winograd_forward_columns(s, l, kernels, x_nhwc, u, u_turned, packed, bias, act == Activation::relu, y_nhwc,
                             slots, threads);
  } else {
    winograd_forward_blocks(s, l, kernels, x_nhwc, packed, bias, act == Activation::relu, y_nhwc, slots);
  }
  if (act != Activation::none && act != Activation::relu) {
    activation_forward(act, y_nhwc, y_nhwc, s.batch * s.out_h * s.out_w * s.out_c);
  }
}

}  // namespace

template <typename T>
size_t winograd_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  const WinogradLayout l = forward_layout<T>(s, threads);
  return u_region_bytes<T>(s, l) + l.slot() * static_cast<size_t>(std::max<int64_t>(l.chunks, 1));
}

template <typename T>
void winograd_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                      T* y_nhwc, void* workspace, int threads) {
  const WinogradLayout l = forward_layout<T>(s, threads);
  auto* base = static_cast<unsigned char*>(workspace);
  T* u = reinterpret_cast<T*>(base);
  const WinogradKernels<T>& kernels = winograd_kernels<T>();
  const bool packs = forward_packs_u<T>(s, l);
  if (packs) {
    pack_forward_u(s, l, kernels, w_hwio, u, threads);
  } else {  // U on every thread: F(4x4, 3x3) at 512 x 512 channels writes 36 MiB of it
    const int64_t co = s.in_c * s.out_c;
    const auto weight_tiles = l.size == 4 ? kernels.weight_tiles4 : kernels.weight_tiles;
    parallel_for(0, co, int64_t(1) << 13, threads,
                 [&](int64_t k0, int64_t k1) { weight_tiles(co, co, k0, k1, w_hwio, u); });
  }
  winograd_run(s, l, kernels, x_nhwc, static_cast<const T*>(u), false, packs ? static_cast<const T*>(u) : nullptr,
               bias, act, y_nhwc, base + u_region_bytes<T>(s, l), threads);
}

template <typename T>
void winograd_backward_data(const Conv2dShape& t, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                            int threads) {
  const WinogradLayout l = forward_layout<T>(t, threads);
  auto* base = static_cast<unsigned char*>(workspace);
  T* u = reinterpret_cast<T*>(base);
  const WinogradKernels<T>& kernels = winograd_kernels<T>();
  const bool four = l.size == 4;
  if (four) {
    flipped_weight_tiles4(t, kernels, w_hwio, u, threads);
  } else {  // the forward's U, read turned (set_gemm_b)
    const int64_t co = t.in_c * t.out_c;
    parallel_for(0, co, int64_t(1) << 13, threads,
                 [&](int64_t k0, int64_t k1) { kernels.weight_tiles(co, co, k0, k1, w_hwio, u); });
  }
  T* packed = nullptr;
  if (!l.split_columns) {
    packed = reinterpret_cast<T*>(base + l.u_bytes);
    pack_u(t, l, static_cast<const T*>(u), !four, packed, threads);
  }
  winograd_run(t, l, kernels, dy_nhwc, static_cast<const T*>(u), !four, static_cast<const T*>(packed),
               static_cast<const T*>(nullptr), Activation::none, dx_nhwc, base + u_region_bytes<T>(t, l), threads);
}

#define FASTNN_INSTANTIATE(T)                                                                                 \
  template bool use_winograd_forward<T>(const Conv2dShape&, int);                                             \
  template size_t winograd_forward_workspace_bytes<T>(const Conv2dShape&, int);                               \
  template void winograd_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*, void*, \
                                    int);                                                                     \
  template void winograd_backward_data<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);            \
  template bool use_winograd_backward_weights<T>(const Conv2dShape&);                                         \
  template size_t winograd_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                      \
  template void winograd_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
