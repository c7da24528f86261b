// Convolution as blocked im2col + GEMM: the algorithm for every shape the
// direct and indirect paths do not take (conv2d.cpp chooses).
//
// im2col + GEMM: the output pixels (batch x out_h x out_w rows) are cut into
// blocks of block_rows rows, sized so one block of the im2col matrix
// (block_rows x kernel_h*kernel_w*in_c) stays in L2.  Each thread takes a
// contiguous range of blocks; for each it gathers the block's patches (in
// NHWC every tap is a contiguous run of in_c values, so the gather is a
// memcpy per tap) and runs a single-threaded GEMM with the bias + activation
// epilogue straight into y.  Keeping a block's gather and its GEMM on one
// core keeps the patches hot in that core's L2, and no fork/join happens
// inside the loop.
//
//   forward:          y[rows]  = act(cols[rows] @ w + b)
//   backward-weights: dw      += cols[rows]^T @ dy[rows]   (per-thread partial
//                     sums in the workspace, added in thread order at the end:
//                     deterministic for a given thread count); where those
//                     partials would outgrow L2, blocks of rows gathered by all
//                     threads and one threaded GEMM each into dw instead
//   backward-data:    dcols    = dy[rows] @ w^T, scattered back (col2im) into
//                     dx; blocks are whole images so threads never write the
//                     same dx element.
//
#include <algorithm>
#include <cstring>

#include "common/align.h"
#include "common/parallel.h"
#include "cpu/conv2d_algorithms.h"
#include "cpu/dispatch.h"
#include "cpu/gemm/gemm.h"
#include "cpu/machine.h"

namespace fastnn::cpu {
namespace {

// One im2col block: 3/8 of the L2 cache_sizes() reports (measured on conv2 of the
// seed network on Sapphire Rapids, 2 MiB L2, 2 threads: 96 KiB 1.90 ms, 192 KiB
// 1.81, 384 KiB 1.73, 768 KiB 1.68, 1.5 MiB 1.83).
template <typename T>
int64_t block_rows(const Conv2dShape& s) {
  const int64_t block_bytes = cache_sizes().l2 * 3 / 8;
  const int64_t per_row = patch_size(s) * static_cast<int64_t>(sizeof(T));
  return std::clamp<int64_t>(block_bytes / std::max<int64_t>(per_row, 1), 8, 2048);
}

// How a pass cuts its output rows for a team of up to `threads`: blocks of at most
// block_rows, as many as makes their count a multiple of the team that takes them, all
// of one size but the last, so no thread takes a block more than another.  ResNet's
// 7x7 stem at batch 1 (12,544 rows, 1,337 to a block) had gone as ten blocks, the last
// of 511 rows: 6,685 rows on one thread and 5,859 on the other.
struct RowBlocks {
  int64_t rows, count, last, team;
};

template <typename T>
RowBlocks row_blocks(const Conv2dShape& s, int threads) {
  const int64_t total = s.batch * s.out_h * s.out_w;
  RowBlocks b{block_rows<T>(s), 0, 0, 1};
  if (total <= 0) return b;
  b.count = (total + b.rows - 1) / b.rows;
  b.team = std::max<int64_t>(1, std::min<int64_t>(threads, b.count));
  const int64_t even = (b.count + b.team - 1) / b.team * b.team;
  b.rows = (total + even - 1) / even;
  b.count = (total + b.rows - 1) / b.rows;
  b.last = total - (b.count - 1) * b.rows;
  return b;
}

// Gathers the patches of output rows [row0, row0 + rows) into cols (rows x patch).
// Without dilation a kernel row inside the image is one run of kernel_w * in_c values
// in NHWC, copied at once (ResNet's 7x7 stem: 7 copies of 21 values instead of 49 of 3).
template <typename T>
void im2col(const Conv2dShape& s, const T* x_nhwc, int64_t row0, int64_t rows, T* cols) {
  const int64_t patch = patch_size(s);
  const size_t run = static_cast<size_t>(s.in_c) * sizeof(T);
  const int64_t kernel_row = s.kernel_w * s.in_c;
  // (n, oh, ow) of row0, then stepped row by row: three divisions a row cost ResNet's
  // stem a fifth of its gather.
  int64_t ow = row0 % s.out_w, oh = (row0 / s.out_w) % s.out_h, n = row0 / (s.out_w * s.out_h);
  for (int64_t r = 0; r < rows; ++r, ++ow) {
    if (ow == s.out_w) {
      ow = 0;
      if (++oh == s.out_h) {
        oh = 0;
        ++n;
      }
    }
    const int64_t iw0 = ow * s.stride_w - s.pad_left;
    const bool whole_rows = s.dilation_w == 1 && iw0 >= 0 && iw0 + s.kernel_w <= s.in_w;
    T* dst = cols + r * patch;
    for (int64_t i = 0; i < s.kernel_h; ++i) {
      const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
      if (whole_rows && ih >= 0 && ih < s.in_h) {
        std::memcpy(dst, x_nhwc + ((n * s.in_h + ih) * s.in_w + iw0) * s.in_c, kernel_row * sizeof(T));
        dst += kernel_row;
        continue;
      }
      for (int64_t j = 0; j < s.kernel_w; ++j, dst += s.in_c) {
        const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
        if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) {
          std::memset(dst, 0, run);
        } else {
          std::memcpy(dst, x_nhwc + ((n * s.in_h + ih) * s.in_w + iw) * s.in_c, run);
        }
      }
    }
  }
}

// The selected ISA's col2im (conv2d_col2im_*.cpp: 13% off conv2 backward-data
// against the baseline-x86 build of the same loop), resolved once.
template <typename T>
const Col2imKernels<T>& col2im_kernels() {
  return resolve_kernel_table(&portable::col2im_kernel_table<T>, &avx2::col2im_kernel_table<T>,
                              &avx512::col2im_kernel_table<T>);
}

template <typename T>
GemmArgs<T> block_gemm(int64_t m, int64_t n, int64_t k) {
  GemmArgs<T> g;
  g.m = m;
  g.n = n;
  g.k = k;
  return g;
}

// Per-thread slot: [im2col block | GEMM workspace | extra (dw partial)].
struct Slots {
  size_t cols_bytes, gemm_bytes, extra_bytes;
  size_t slot() const { return cols_bytes + gemm_bytes + extra_bytes; }
};

// GEMM workspace for the blocks a row-blocked pass runs: the full block and the
// last, shorter one (the GEMM's blocking, and so its workspace, depends on the
// sizes, not monotonically).  Sizing for both keeps gemm() from ever finding
// its workspace short inside a parallel region.
template <typename MakeArgs>
size_t block_gemm_bytes(const RowBlocks& b, const MakeArgs& make_args) {
  if (b.count == 0) return 0;
  return std::max(gemm_workspace_bytes(make_args(b.rows), 1), gemm_workspace_bytes(make_args(b.last), 1));
}

template <typename T>
Slots forward_slots(const Conv2dShape& s, int threads) {
  const int64_t k = patch_size(s);
  const RowBlocks b = row_blocks<T>(s, threads);
  const size_t gemm_bytes = block_gemm_bytes(b, [&](int64_t rows) {
    GemmArgs<T> g = block_gemm<T>(rows, s.out_c, k);
    g.lda = k;
    g.ldb = s.out_c;
    g.ldc = s.out_c;
    return g;
  });
  return {align_up(b.rows * k * sizeof(T)), align_up(gemm_bytes), 0};
}

// Backward-data's GEMM for `rows` output pixels: dcols = dy[rows] @ w^T.
template <typename T>
GemmArgs<T> backward_data_gemm(const Conv2dShape& s, int64_t rows) {
  GemmArgs<T> g = block_gemm<T>(rows, patch_size(s), s.out_c);
  g.trans_b = true;
  g.lda = s.out_c;
  g.ldb = s.out_c;
  g.ldc = patch_size(s);
  return g;
}

// A pointwise convolution's forward: y = act(x @ w + b) over the whole batch, one GEMM on
// every thread.  In row blocks of 3/8 L2 with a GEMM each, every block packed all of w
// again: MobileNet's 512->512 at 14x14, batch 32, 11.6 -> 10.6 ms (2 threads).
template <typename T>
GemmArgs<T> pointwise_forward_gemm(const Conv2dShape& s) {
  GemmArgs<T> g = block_gemm<T>(s.batch * s.out_h * s.out_w, s.out_c, s.in_c);
  g.lda = s.in_c;
  g.ldb = s.out_c;
  g.ldc = s.out_c;
  return g;
}

template <typename T>
Slots backward_data_slots(const Conv2dShape& s) {
  const int64_t rows = s.out_h * s.out_w;  // one image per block
  return {align_up(rows * patch_size(s) * sizeof(T)), align_up(gemm_workspace_bytes(backward_data_gemm<T>(s, rows), 1)),
          0};
}

// Fewer images than threads (batch 1): one image at a time, each GEMM on every thread,
// col2im after it.  Per-image blocks had left every thread but one idle: ResNet-50's 1x1
// 256->64 at 56x56, batch 1, ran at 0.64x PyTorch channels-last, ResNet-18's 3x3 64->128
// stride 2 at 0.54x.  A pointwise convolution at any batch: its whole batch in one GEMM
// (per image, each thread packed all of w again for every image: ResNet-50's 1x1
// 256->1024 at 14x14, batch 32, 11.5 -> 10.6 ms; MobileNet's 512->512 12.5 -> 10.4).
bool backward_data_shares_gemms(const Conv2dShape& s, int threads) { return s.batch < threads || is_pointwise(s); }

template <typename T>
Slots shared_backward_data_slots(const Conv2dShape& s, int threads) {
  const int64_t rows = is_pointwise(s) ? s.batch * s.out_h * s.out_w : s.out_h * s.out_w;
  const size_t cols = is_pointwise(s) ? 0 : align_up(rows * patch_size(s) * sizeof(T));
  return {cols, align_up(gemm_workspace_bytes(backward_data_gemm<T>(s, rows), threads)), 0};
}

template <typename T>
Slots backward_weights_slots(const Conv2dShape& s, int threads) {
  const int64_t k = patch_size(s);
  const RowBlocks b = row_blocks<T>(s, threads);
  const size_t gemm_bytes = block_gemm_bytes(b, [&](int64_t rows) {
    GemmArgs<T> g = block_gemm<T>(k, s.out_c, rows);
    g.trans_a = true;
    g.lda = k;
    g.ldb = s.out_c;
    g.ldc = s.out_c;
    return g;
  });
  return {align_up(b.rows * k * sizeof(T)), align_up(gemm_bytes), align_up(k * s.out_c * sizeof(T))};
}

// Runs fn(chunk, row0, rows, patches, gemm_workspace) for every block of
// output rows (row_blocks for `threads`), each thread on a contiguous range of blocks
// in its own slot of the workspace; `patches` is the block's im2col matrix (rows x
// patch), or x itself for a pointwise convolution.  Shared by forward and
// backward-weights.  Returns the number of chunks that ran (at most the blocks' team).
template <typename T, typename F>
int64_t for_each_patch_block(const Conv2dShape& s, const T* x_nhwc, const Slots& slots, void* workspace,
                             int threads, const F& fn) {
  const int64_t total_rows = s.batch * s.out_h * s.out_w;
  const RowBlocks rb = row_blocks<T>(s, threads);
  const int64_t rows_per_block = rb.rows, blocks = rb.count;
  const bool pointwise = is_pointwise(s);
  return parallel_chunks(0, blocks, 1, rb.team, [&](int64_t chunk, int64_t b0, int64_t b1) {
    auto* base = static_cast<unsigned char*>(workspace) + chunk * slots.slot();
    T* cols = reinterpret_cast<T*>(base);
    void* gemm_ws = base + slots.cols_bytes;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t row0 = b * rows_per_block;
      const int64_t rows = std::min(rows_per_block, total_rows - row0);
      const T* patches = x_nhwc + row0 * s.in_c;
      if (!pointwise) {
        im2col(s, x_nhwc, row0, rows, cols);
        patches = cols;
      }
      fn(chunk, row0, rows, patches, gemm_ws);
    }
  });
}

// dx of image n from its patch gradients dcols (one image's rows), on every thread: the
// image zeroed in ranges, then its output rows in bands, the even bands and then the odd
// ones, each band tall enough that the two beside it never add into the same dx row.  On
// one thread, ResNet-18's 3x3 64->128 stride 2 at batch 1 spent a fifth of its
// backward-data here with the other thread waiting (0.55 -> 0.46 ms on 2 threads).  The
// order of a dx element's adds depends on the band count (so on the thread count), not on
// timing.
template <typename T>
void col2im_image(const Conv2dShape& s, const Col2imKernels<T>& col2im, const T* dcols, int64_t n, T* dx_nhwc,
                  int threads) {
  const int64_t image = s.in_h * s.in_w * s.in_c, image_rows = s.out_h * s.out_w, patch = patch_size(s);
  T* dx_image = dx_nhwc + n * image;
  const int64_t span = (s.kernel_h - 1) * s.dilation_h + 1;  // the dx rows one output row adds into
  const int64_t min_rows = (span + s.stride_h - 1) / s.stride_h;
  const int64_t bands = std::min<int64_t>(2 * threads, s.out_h / std::max<int64_t>(min_rows, 1));
  if (threads <= 1 || bands < 2) {
    std::fill(dx_image, dx_image + image, T(0));
    col2im.add(s, dcols, n * image_rows, image_rows, dx_nhwc);
    return;
  }
  parallel_for(0, image, int64_t(1) << 14, threads,
               [&](int64_t i0, int64_t i1) { std::fill(dx_image + i0, dx_image + i1, T(0)); });
  for (int64_t phase = 0; phase < 2; ++phase) {
    parallel_for(0, (bands - phase + 1) / 2, 1, threads, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t band = 2 * b + phase;
        const int64_t oh0 = s.out_h * band / bands, oh1 = s.out_h * (band + 1) / bands;
        col2im.add(s, dcols + oh0 * s.out_w * patch, n * image_rows + oh0 * s.out_w, (oh1 - oh0) * s.out_w,
                   dx_nhwc);
      }
    });
  }
}

}  // namespace

template <typename T>
size_t im2col_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  if (is_pointwise(s)) return gemm_workspace_bytes(pointwise_forward_gemm<T>(s), threads);
  return forward_slots<T>(s, threads).slot() * static_cast<size_t>(std::max(threads, 1));
}

template <typename T>
size_t im2col_backward_data_workspace_bytes(const Conv2dShape& s, int threads) {
  if (backward_data_shares_gemms(s, threads)) return shared_backward_data_slots<T>(s, threads).slot();
  return backward_data_slots<T>(s).slot() * static_cast<size_t>(std::max(threads, 1));
}

template <typename T>
size_t im2col_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  return backward_weights_slots<T>(s, threads).slot() * static_cast<size_t>(std::max(threads, 1));
}

template <typename T>
void im2col_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                    T* y_nhwc, void* workspace, int threads) {
  if (is_pointwise(s)) {
    GemmArgs<T> g = pointwise_forward_gemm<T>(s);
    g.a = x_nhwc;
    g.b = w_hwio;
    g.c = y_nhwc;
    g.bias = bias;
    g.act = act;
    gemm(g, workspace, gemm_workspace_bytes(g, threads), threads);
    return;
  }
  const Slots slots = forward_slots<T>(s, threads);
  const int64_t k = patch_size(s);
  for_each_patch_block(s, x_nhwc, slots, workspace, threads,
                       [&](int64_t, int64_t row0, int64_t rows, const T* patches, void* gemm_ws) {
                         GemmArgs<T> g = block_gemm<T>(rows, s.out_c, k);
                         g.a = patches;
                         g.lda = k;
                         g.b = w_hwio;
                         g.ldb = s.out_c;
                         g.c = y_nhwc + row0 * s.out_c;
                         g.ldc = s.out_c;
                         g.bias = bias;
                         g.act = act;
                         gemm(g, gemm_ws, slots.gemm_bytes, 1);
                       });
}

template <typename T>
void im2col_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                          int threads) {
  const Col2imKernels<T>& col2im = col2im_kernels<T>();
  const int64_t image_rows = s.out_h * s.out_w;
  const bool pointwise = is_pointwise(s);
  if (backward_data_shares_gemms(s, threads)) {
    const Slots slots = shared_backward_data_slots<T>(s, threads);
    T* dcols = static_cast<T*>(workspace);
    void* gemm_ws = static_cast<unsigned char*>(workspace) + slots.cols_bytes;
    if (pointwise) {  // dcols is dx_nhwc itself
      GemmArgs<T> g = backward_data_gemm<T>(s, s.batch * image_rows);
      g.a = dy_nhwc;
      g.b = w_hwio;
      g.c = dx_nhwc;
      gemm(g, gemm_ws, slots.gemm_bytes, threads);
      return;
    }
    for (int64_t n = 0; n < s.batch; ++n) {
      GemmArgs<T> g = backward_data_gemm<T>(s, image_rows);
      g.a = dy_nhwc + n * image_rows * s.out_c;
      g.b = w_hwio;
      g.c = dcols;
      gemm(g, gemm_ws, slots.gemm_bytes, threads);
      col2im_image(s, col2im, dcols, n, dx_nhwc, threads);
    }
    return;
  }
  const Slots slots = backward_data_slots<T>(s);
  parallel_chunks(0, s.batch, 1, threads, [&](int64_t chunk, int64_t n0, int64_t n1) {
    auto* base = static_cast<unsigned char*>(workspace) + chunk * slots.slot();
    T* dcols = reinterpret_cast<T*>(base);
    void* gemm_ws = base + slots.cols_bytes;
    for (int64_t n = n0; n < n1; ++n) {
      T* dx_image = dx_nhwc + n * s.in_h * s.in_w * s.in_c;
      GemmArgs<T> g = backward_data_gemm<T>(s, image_rows);
      g.a = dy_nhwc + n * image_rows * s.out_c;
      g.b = w_hwio;
      if (pointwise) {  // dcols is dx_nhwc itself
        g.c = dx_image;
        gemm(g, gemm_ws, slots.gemm_bytes, 1);
        continue;
      }
      g.c = dcols;
      gemm(g, gemm_ws, slots.gemm_bytes, 1);
      std::fill(dx_image, dx_image + s.in_h * s.in_w * s.in_c, T(0));
      col2im.add(s, dcols, n * image_rows, image_rows, dx_nhwc);
    }
  });
}

template <typename T>
void im2col_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                             void* workspace, int threads) {
  const Slots slots = backward_weights_slots<T>(s, threads);
  const int64_t k = patch_size(s);
  const int64_t dw_size = k * s.out_c;
  auto partial = [&](int64_t chunk) {
    return reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + chunk * slots.slot() + slots.cols_bytes +
                                slots.gemm_bytes);
  };
  const int64_t team = row_blocks<T>(s, threads).team;
  for (int64_t c = 0; c < team; ++c) std::fill(partial(c), partial(c) + dw_size, T(0));
  const int64_t used = for_each_patch_block(s, x_nhwc, slots, workspace, threads,
                       [&](int64_t chunk, int64_t row0, int64_t rows, const T* patches, void* gemm_ws) {
                         GemmArgs<T> g = block_gemm<T>(k, s.out_c, rows);
                         g.a = patches;
                         g.lda = k;
                         g.trans_a = true;
                         g.b = dy_nhwc + row0 * s.out_c;
                         g.ldb = s.out_c;
                         g.c = partial(chunk);
                         g.ldc = s.out_c;
                         g.beta = T(1);
                         gemm(g, gemm_ws, slots.gemm_bytes, 1);
                       });
  sum_partials(dw_hwio, dw_size, used, partial);
}

// Backward-weights with the threads sharing one GEMM per block of rows:
// dw = sum over blocks of cols[rows]^T @ dy[rows], each GEMM splitting dw's rows and
// columns over the threads (beta = 1 after the first block), so no thread keeps a
// partial dw.  For a large dw (ResNet's 512->512 3x3: 9.4 MB per partial) the
// partials' traffic, not the FLOPs, bounded the per-thread paths.  The blocks'
// patches are gathered by all threads; a pointwise convolution's are x itself,
// in one block.
namespace {

// A shared block's patches: a few MiB, so each GEMM has a long K (the rows) for
// few passes over dw.
constexpr int64_t kSharedBlockBytes = int64_t(8) << 20;

template <typename T>
int64_t shared_block_rows(const Conv2dShape& s) {
  const int64_t total_rows = s.batch * s.out_h * s.out_w;
  if (is_pointwise(s)) return std::max<int64_t>(total_rows, 1);
  const int64_t per_row = patch_size(s) * static_cast<int64_t>(sizeof(T));
  return std::clamp<int64_t>(kSharedBlockBytes / std::max<int64_t>(per_row, 1), 256,
                             std::max<int64_t>(total_rows, 1));
}

template <typename T>
GemmArgs<T> shared_block_gemm(const Conv2dShape& s, int64_t rows) {
  GemmArgs<T> g = block_gemm<T>(patch_size(s), s.out_c, rows);
  g.trans_a = true;
  g.lda = patch_size(s);
  g.ldb = s.out_c;
  g.ldc = s.out_c;
  return g;
}

template <typename T>
size_t shared_cols_bytes(const Conv2dShape& s) {
  return is_pointwise(s) ? 0 : align_up(shared_block_rows<T>(s) * patch_size(s) * sizeof(T));
}

template <typename T>
size_t shared_gemm_bytes(const Conv2dShape& s, int threads) {
  const int64_t rows = shared_block_rows<T>(s);
  const int64_t last = (s.batch * s.out_h * s.out_w) % rows;
  size_t bytes = gemm_workspace_bytes(shared_block_gemm<T>(s, rows), threads);
  if (last > 0) bytes = std::max(bytes, gemm_workspace_bytes(shared_block_gemm<T>(s, last), threads));
  return align_up(bytes);
}

}  // namespace

template <typename T>
size_t im2col_shared_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  return shared_cols_bytes<T>(s) + shared_gemm_bytes<T>(s, threads);
}

template <typename T>
void im2col_shared_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    void* workspace, int threads) {
  const int64_t total_rows = s.batch * s.out_h * s.out_w;
  const int64_t k = patch_size(s);
  if (total_rows == 0) {  // no rows: the gradient is zero
    std::fill(dw_hwio, dw_hwio + k * s.out_c, T(0));
    return;
  }
  const int64_t block = shared_block_rows<T>(s);
  const bool pointwise = is_pointwise(s);
  T* cols = static_cast<T*>(workspace);
  void* gemm_ws = static_cast<unsigned char*>(workspace) + shared_cols_bytes<T>(s);
  const size_t gemm_bytes = shared_gemm_bytes<T>(s, threads);
  for (int64_t row0 = 0; row0 < total_rows; row0 += block) {
    const int64_t rows = std::min(block, total_rows - row0);
    const T* patches = x_nhwc + row0 * s.in_c;
    if (!pointwise) {
      parallel_for(0, rows, 16, threads,
                   [&](int64_t r0, int64_t r1) { im2col(s, x_nhwc, row0 + r0, r1 - r0, cols + r0 * k); });
      patches = cols;
    }
    GemmArgs<T> g = shared_block_gemm<T>(s, rows);
    g.a = patches;
    g.b = dy_nhwc + row0 * s.out_c;
    g.c = dw_hwio;
    g.beta = row0 == 0 ? T(0) : T(1);
    gemm(g, gemm_ws, gemm_bytes, threads);
  }
}

#define FASTNN_INSTANTIATE(T)                                                                              \
  template size_t im2col_forward_workspace_bytes<T>(const Conv2dShape&, int);                              \
  template size_t im2col_backward_data_workspace_bytes<T>(const Conv2dShape&, int);                        \
  template size_t im2col_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                     \
  template void im2col_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*, void*, int); \
  template void im2col_backward_data<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);           \
  template void im2col_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);           \
  template size_t im2col_shared_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);              \
  template void im2col_shared_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
