// Convolution on NHWC images and HWIO weights: three algorithms, chosen per
// shape and pass (measured on the seed network; see the constants below).
//
//  * Direct kernels (conv2d_direct.h) for short patches, kh*kw*in_c <= 72 (a
//    first layer): forward and backward-weights.
//  * Indirect GEMM for >= 16 channels per tap: a table of run pointers (a
//    pixel's channel vector per kernel tap, or a zero run for padding) feeds
//    the GEMM's register tiles directly (gemm_kernels.h), with no im2col copy
//    and no col2im scatter.  Forward and backward-weights at any stride,
//    backward-data at stride 1 (a forward-like pass over dy).
//  * Blocked im2col + GEMM for the rest, every block on one thread.
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
//                     deterministic for a given thread count)
//   backward-data:    dcols    = dy[rows] @ w^T, scattered back (col2im) into
//                     dx; blocks are whole images so threads never write the
//                     same dx element.
//
// A 1x1 convolution with stride 1 and no padding is a plain GEMM on x.
#include "cpu/conv2d.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/cpu_features.h"
#include "common/parallel.h"
#include "cpu/conv2d_direct.h"
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/gemm_kernels.h"

namespace fastnn::cpu {

#define FASTNN_DECLARE_COL2IM(ns)                                                                \
  namespace ns {                                                                                 \
  template <typename T> void col2im_add(const Conv2dShape&, const T*, int64_t, int64_t, T*);     \
  }
FASTNN_DECLARE_COL2IM(portable)
FASTNN_DECLARE_COL2IM(avx2)
FASTNN_DECLARE_COL2IM(avx512)
#undef FASTNN_DECLARE_COL2IM

namespace {

constexpr size_t kAlign = 64;
// One im2col block: about a third of a 2 MiB L2 (measured on conv2 of the seed
// network, 2 threads: 96 KiB 1.90 ms, 192 KiB 1.81, 384 KiB 1.73, 768 KiB 1.68,
// 1.5 MiB 1.83).
constexpr int64_t kBlockBytes = 768 * 1024;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

int64_t patch_size(const Conv2dShape& s) { return s.kernel_h * s.kernel_w * s.in_c; }

bool is_pointwise(const Conv2dShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w;
}

template <typename T>
int64_t block_rows(const Conv2dShape& s) {
  const int64_t per_row = patch_size(s) * static_cast<int64_t>(sizeof(T));
  return std::clamp<int64_t>(kBlockBytes / std::max<int64_t>(per_row, 1), 8, 2048);
}

// Gathers the patches of output rows [row0, row0 + rows) into cols (rows x patch).
template <typename T>
void im2col(const Conv2dShape& s, const T* x, int64_t row0, int64_t rows, T* cols) {
  const int64_t patch = patch_size(s);
  const size_t run = static_cast<size_t>(s.in_c) * sizeof(T);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = row0 + r;
    const int64_t ow = row % s.out_w;
    const int64_t oh = (row / s.out_w) % s.out_h;
    const int64_t n = row / (s.out_w * s.out_h);
    T* dst = cols + r * patch;
    for (int64_t i = 0; i < s.kernel_h; ++i) {
      const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
      for (int64_t j = 0; j < s.kernel_w; ++j, dst += s.in_c) {
        const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
        if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) {
          std::memset(dst, 0, run);
        } else {
          std::memcpy(dst, x + ((n * s.in_h + ih) * s.in_w + iw) * s.in_c, run);
        }
      }
    }
  }
}

// Adds the patch gradients of output rows [row0, row0 + rows) back into dx, with
// the ISA's vector adds (conv2d_col2im_*.cpp: 13% off conv2 backward-data
// against the baseline-x86 build of the same loop).
template <typename T>
void col2im_add(const Conv2dShape& s, const T* cols, int64_t row0, int64_t rows, T* dx) {
  switch (selected_isa()) {
    case Isa::avx512: avx512::col2im_add(s, cols, row0, rows, dx); break;
    case Isa::avx2: avx2::col2im_add(s, cols, row0, rows, dx); break;
    default: portable::col2im_add(s, cols, row0, rows, dx); break;
  }
}

template <typename T>
GemmArgs<T> block_gemm(int64_t m, int64_t n, int64_t k) {
  GemmArgs<T> g;
  g.m = m;
  g.n = n;
  g.k = k;
  return g;
}

// ------------------------------------------------------- indirect convolution
//
// Forward and stride-1 backward-data without an im2col copy: a table of run
// pointers (one per output row and kernel tap: a pixel's channel vector, or
// a zero run where the tap falls in the padding) feeds the indirect GEMM
// micro-kernels (gemm_kernels.h), which read every tap straight from the
// image.  The weights are packed once per call into the kernel's panels.
//
//   forward:       y[pixel]  = act(sum_tap x[pixel + tap] @ w[tap] + b)
//   backward-data: dx[pixel] = sum_tap dy[pixel - tap] @ w[tap]^T  (stride 1:
//                  each dx row is written once, by one thread, and never
//                  needs zeroing or a scatter)

// Output rows per pointer table: a table (rows x taps pointers) stays in L1.
template <typename T>
int64_t indirect_chunk_rows(const gemm_impl::IndirectKernel<T>& ik) { return 16 * ik.mr; }

struct IndirectLayout {
  size_t packed_bytes, zero_bytes, offsets_bytes, table_bytes;  // table: per thread
  size_t shared() const { return packed_bytes + zero_bytes + offsets_bytes; }
  size_t total(int threads) const { return shared() + table_bytes * size_t(std::max(threads, 1)); }
};

// The workspace of an indirect pass, carved by its layout: the packed weights,
// the zero run, one image's run offsets, then one pointer table per thread.
template <typename T>
struct IndirectBuffers {
  T* packed;
  T* zero;
  int64_t* offsets;
  unsigned char* tables;
};

template <typename T>
IndirectBuffers<T> indirect_buffers(const IndirectLayout& l, void* workspace) {
  auto* base = static_cast<unsigned char*>(workspace);
  return {reinterpret_cast<T*>(base), reinterpret_cast<T*>(base + l.packed_bytes),
          reinterpret_cast<int64_t*>(base + l.packed_bytes + l.zero_bytes), base + l.shared()};
}

// taps x kc runs per row, n output columns, `spatial` rows per image.
template <typename T>
IndirectLayout indirect_layout(const gemm_impl::IndirectKernel<T>& ik, int64_t taps, int64_t kc, int64_t n,
                               int64_t spatial) {
  const int64_t panels = (n + ik.nr - 1) / ik.nr;
  IndirectLayout l;
  l.packed_bytes = align_up(size_t(panels * taps * kc * ik.nr) * sizeof(T));
  l.zero_bytes = align_up(size_t(kc) * sizeof(T));
  l.offsets_bytes = align_up(size_t(spatial * taps) * sizeof(int64_t));
  l.table_bytes = align_up(size_t(indirect_chunk_rows(ik) * taps) * sizeof(const T*));
  return l;
}

// The run pointers of rows [row0, row0 + rows) of a batch of images, taps per
// row.  The runs are the same for every image: offsets[q*taps + t] is tap t
// of spatial position q, relative to its image (image_elems apart from
// `src`), or -1 for a tap in the padding (the zero run).  A select per entry,
// which the compiler vectorises.
template <typename T>
void fill_runs(const int64_t* offsets, int64_t spatial, int64_t taps, const T* src, int64_t image_elems,
               const T* zero, int64_t row0, int64_t rows, const T** table) {
  int64_t n = row0 / spatial, pos = row0 % spatial;
  for (int64_t r = 0; r < rows; ++r, table += taps) {
    const T* image = src + n * image_elems;
    const int64_t* off = offsets + pos * taps;
    for (int64_t k = 0; k < taps; ++k) table[k] = off[k] < 0 ? zero : image + off[k];
    if (++pos == spatial) {
      pos = 0;
      ++n;
    }
  }
}

// Runs the indirect GEMM over batch x spatial output rows, cut into chunks
// that threads take in contiguous ranges, each with its own pointer table.
template <typename T>
void run_indirect(const gemm_impl::IndirectKernel<T>& ik, const IndirectLayout& l, int64_t batch, int64_t spatial,
                  const T* src, int64_t image_elems, gemm_impl::IndirectTask<T> task, void* workspace,
                  int threads) {
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, workspace);
  const int64_t total_rows = batch * spatial;
  const int64_t chunk_rows = indirect_chunk_rows(ik);
  const int64_t chunks = (total_rows + chunk_rows - 1) / chunk_rows;
  T* const c0 = task.c;
  task.zero = buf.zero;
  parallel_chunks(0, chunks, 1, threads, [&](int64_t slot, int64_t q0, int64_t q1) {
    auto** table = reinterpret_cast<const T**>(buf.tables + slot * l.table_bytes);
    gemm_impl::IndirectTask<T> t = task;
    t.rows = table;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t row0 = q * chunk_rows;
      t.mc = std::min(chunk_rows, total_rows - row0);
      fill_runs(buf.offsets, spatial, task.taps, src, image_elems, buf.zero, row0, t.mc, table);
      t.c = c0 + row0 * t.ldc;
      ik.run(t);
    }
  });
}

// Forward's runs: tap (i, j) of output pixel (oh, ow) reads input pixel
// (oh*stride - pad + i*dil, ow*stride - pad + j*dil).
void forward_offsets(const Conv2dShape& s, int64_t* offsets) {
  for (int64_t oh = 0; oh < s.out_h; ++oh) {
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      for (int64_t i = 0; i < s.kernel_h; ++i) {
        const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
        for (int64_t j = 0; j < s.kernel_w; ++j) {
          const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
          const bool inside = ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w;
          *offsets++ = inside ? (ih * s.in_w + iw) * s.in_c : -1;
        }
      }
    }
  }
}

// Backward-data's runs: tap (i, j) of dx pixel (ih, iw) reads dy pixel
// (ih + pad - i*dil, iw + pad - j*dil) (stride 1).
void backward_data_offsets(const Conv2dShape& s, int64_t* offsets) {
  for (int64_t ih = 0; ih < s.in_h; ++ih) {
    for (int64_t iw = 0; iw < s.in_w; ++iw) {
      for (int64_t i = 0; i < s.kernel_h; ++i) {
        const int64_t oh = ih + s.pad_top - i * s.dilation_h;
        for (int64_t j = 0; j < s.kernel_w; ++j) {
          const int64_t ow = iw + s.pad_left - j * s.dilation_w;
          const bool inside = oh >= 0 && oh < s.out_h && ow >= 0 && ow < s.out_w;
          *offsets++ = inside ? (oh * s.out_w + ow) * s.out_c : -1;
        }
      }
    }
  }
}

// The indirect path needs a few channels per tap to keep its inner loop busy;
// 1x1 stride-1 convolutions are plain GEMMs on x and skip it.
constexpr int64_t kMinIndirectRun = 16;

// The run-offset table covers one image's pixels x taps (8 bytes each): for very
// large images it would outgrow any cache and the workspace, so those keep the
// im2col path, whose workspace is bounded by its block size.
constexpr int64_t kMaxOffsetTableBytes = int64_t(16) << 20;

bool offsets_fit(int64_t pixels, const Conv2dShape& s) {
  return pixels * s.kernel_h * s.kernel_w * int64_t(sizeof(int64_t)) <= kMaxOffsetTableBytes;
}

bool use_indirect_forward(const Conv2dShape& s) {
  return s.in_c >= kMinIndirectRun && !is_pointwise(s) && offsets_fit(s.out_h * s.out_w, s);
}

// Backward-data's output rows are in_c wide: a narrow one would leave most lanes
// of the micro-tile idle (1 of 16 for a first layer: 3.5 ms against im2col's 1.1).
bool use_indirect_backward_data(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.out_c >= kMinIndirectRun && s.in_c >= kMinIndirectRun &&
         !is_pointwise(s) && offsets_fit(s.in_h * s.in_w, s);
}

template <typename T>
IndirectLayout indirect_forward_layout(const Conv2dShape& s, const gemm_impl::IndirectKernel<T>& ik) {
  return indirect_layout(ik, s.kernel_h * s.kernel_w, s.in_c, s.out_c, s.out_h * s.out_w);
}

template <typename T>
IndirectLayout indirect_backward_data_layout(const Conv2dShape& s, const gemm_impl::IndirectKernel<T>& ik) {
  return indirect_layout(ik, s.kernel_h * s.kernel_w, s.out_c, s.in_c, s.in_h * s.in_w);
}

template <typename T>
size_t indirect_forward_bytes(const Conv2dShape& s, int threads) {
  return indirect_forward_layout(s, gemm_impl::indirect_kernel<T>(s.out_c)).total(threads);
}

template <typename T>
size_t indirect_backward_data_bytes(const Conv2dShape& s, int threads) {
  return indirect_backward_data_layout(s, gemm_impl::indirect_kernel<T>(s.in_c)).total(threads);
}

template <typename T>
void indirect_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, Activation act, T* y,
                      void* workspace, int threads) {
  const auto ik = gemm_impl::indirect_kernel<T>(s.out_c);
  const int64_t taps = s.kernel_h * s.kernel_w;
  const IndirectLayout l = indirect_forward_layout(s, ik);
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, workspace);
  ik.pack_b(taps * s.in_c, s.out_c, w, s.out_c, false, buf.packed);  // panels of (taps*in_c) x NR
  std::fill(buf.zero, buf.zero + s.in_c, T(0));
  forward_offsets(s, buf.offsets);

  gemm_impl::IndirectTask<T> task{};
  task.nc = s.out_c;
  task.taps = taps;
  task.kc = s.in_c;
  task.b = buf.packed;
  task.b_tap_stride = s.in_c * ik.nr;
  task.b_panel_stride = taps * s.in_c * ik.nr;
  task.c = y;
  task.ldc = s.out_c;
  task.ep = gemm_impl::Epilogue<T>{T(1), T(0), true, true, bias, act};
  run_indirect(ik, l, s.batch, s.out_h * s.out_w, x, s.in_h * s.in_w * s.in_c, task, workspace, threads);
}

template <typename T>
void indirect_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx, void* workspace, int threads) {
  const auto ik = gemm_impl::indirect_kernel<T>(s.in_c);
  const int64_t taps = s.kernel_h * s.kernel_w;
  const IndirectLayout l = indirect_backward_data_layout(s, ik);
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, workspace);
  const int64_t panels = (s.in_c + ik.nr - 1) / ik.nr;
  for (int64_t t = 0; t < taps; ++t) {  // tap t: w[t]^T (out_c x in_c) in NR-column panels
    ik.pack_b(s.out_c, s.in_c, w + t * s.in_c * s.out_c, s.out_c, true, buf.packed + t * panels * s.out_c * ik.nr);
  }
  std::fill(buf.zero, buf.zero + s.out_c, T(0));
  backward_data_offsets(s, buf.offsets);

  gemm_impl::IndirectTask<T> task{};
  task.nc = s.in_c;
  task.taps = taps;
  task.kc = s.out_c;
  task.b = buf.packed;
  task.b_tap_stride = panels * s.out_c * ik.nr;
  task.b_panel_stride = s.out_c * ik.nr;
  task.c = dx;
  task.ldc = s.in_c;
  task.ep = gemm_impl::Epilogue<T>{T(1), T(0), true, true, nullptr, Activation::none};
  run_indirect(ik, l, s.batch, s.in_h * s.in_w, dy, s.out_h * s.out_w * s.out_c, task, workspace, threads);
}

// dw = the threads' partial weight gradients added in thread order
// (deterministic for a given thread count).
template <typename T, typename Partial>
void sum_partials(T* dw, int64_t size, int64_t count, const Partial& partial) {
  if (count == 0) {  // no rows: nothing ran, the gradient is zero
    std::fill(dw, dw + size, T(0));
    return;
  }
  std::copy(partial(0), partial(0) + size, dw);
  for (int64_t c = 1; c < count; ++c) {
    const T* p = partial(c);
    for (int64_t i = 0; i < size; ++i) dw[i] += p[i];
  }
}

// Backward-weights, per tap t:  dw[t] (in_c x out_c) += runs(t)^T @ dy over
// the pixels whose tap t reads inside the image (forward's runs; taps in the
// padding would add zeros, so they are left out of the lists).  Each thread
// takes a contiguous range of chunks of output rows (short enough that a
// chunk's dy rows stay in L1 while every tile of dw[t] passes over them) and
// accumulates into its own partial dw; the partials are added in thread order
// (deterministic for a thread count).
bool use_indirect_backward_weights(const Conv2dShape& s) {
  return s.in_c >= kMinIndirectRun && !is_pointwise(s) && offsets_fit(s.out_h * s.out_w, s);
}

// Rows per chunk: dy's rows of a chunk take about half of L1 (measured on the
// seed's conv2, 1 thread: 16-24 KiB 3.2 ms, 8 KiB 3.5, 32-128 KiB 3.8-4.0).
template <typename T>
int64_t gather_chunk_rows(const Conv2dShape& s) {
  constexpr int64_t kChunkBytes = 24 * 1024;
  return std::clamp<int64_t>(kChunkBytes / (s.out_c * int64_t(sizeof(T))), 16, 512);
}

struct GatherLayout {
  size_t offsets_bytes;                          // shared
  size_t table_bytes, count_bytes, partial_bytes;  // per thread
  size_t slot() const { return table_bytes + count_bytes + partial_bytes; }
  size_t total(int threads) const { return offsets_bytes + slot() * size_t(std::max(threads, 1)); }
};

template <typename T>
GatherLayout gather_layout(const Conv2dShape& s) {
  const int64_t taps = s.kernel_h * s.kernel_w;
  GatherLayout l;
  l.offsets_bytes = align_up(size_t(s.out_h * s.out_w * taps) * sizeof(int64_t));
  l.table_bytes = align_up(size_t(2 * gather_chunk_rows<T>(s) * taps) * sizeof(const T*));
  l.count_bytes = align_up(size_t(taps) * sizeof(int64_t));
  l.partial_bytes = align_up(size_t(taps * s.in_c * s.out_c) * sizeof(T));
  return l;
}

template <typename T>
void indirect_backward_weights(const Conv2dShape& s, const T* dy, const T* x, T* dw, void* workspace,
                               int threads) {
  const auto gk = gemm_impl::gather_kernel<T>(s.in_c, s.out_c);
  const int64_t taps = s.kernel_h * s.kernel_w;
  const GatherLayout l = gather_layout<T>(s);
  auto* base = static_cast<unsigned char*>(workspace);
  auto* offsets = reinterpret_cast<int64_t*>(base);
  forward_offsets(s, offsets);

  const int64_t spatial = s.out_h * s.out_w;
  const int64_t total_rows = s.batch * spatial;
  const int64_t chunk_rows = gather_chunk_rows<T>(s);
  const int64_t chunks = (total_rows + chunk_rows - 1) / chunk_rows;
  const int64_t dw_size = taps * s.in_c * s.out_c;
  const int64_t slots = std::min<int64_t>(threads, chunks);
  auto slot_base = [&](int64_t slot) { return base + l.offsets_bytes + slot * l.slot(); };
  auto partial = [&](int64_t slot) {
    return reinterpret_cast<T*>(slot_base(slot) + l.table_bytes + l.count_bytes);
  };
  // Exactly the slots that ran zero and fill their partial; only those are added.
  const int64_t used = parallel_chunks(0, chunks, 1, slots, [&](int64_t slot, int64_t q0, int64_t q1) {
    // Per tap, the chunk's pixels whose tap is inside the image: x runs and dy rows.
    auto** runs = reinterpret_cast<const T**>(slot_base(slot));
    const T** dy_rows = runs + taps * chunk_rows;
    auto* count = reinterpret_cast<int64_t*>(slot_base(slot) + l.table_bytes);
    T* acc = partial(slot);
    std::fill(acc, acc + dw_size, T(0));
    gemm_impl::GatherTask<T> t{};
    t.mc = s.in_c;
    t.nc = s.out_c;
    t.ldc = s.out_c;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t row0 = q * chunk_rows;
      const int64_t rows = std::min(chunk_rows, total_rows - row0);
      std::fill(count, count + taps, int64_t{0});
      int64_t n = row0 / spatial, pos = row0 % spatial;
      for (int64_t r = 0; r < rows; ++r) {
        const T* image = x + n * s.in_h * s.in_w * s.in_c;
        const int64_t* off = offsets + pos * taps;
        for (int64_t tap = 0; tap < taps; ++tap) {
          if (off[tap] < 0) continue;
          const int64_t k = tap * chunk_rows + count[tap]++;
          runs[k] = image + off[tap];
          dy_rows[k] = dy + (row0 + r) * s.out_c;
        }
        if (++pos == spatial) {
          pos = 0;
          ++n;
        }
      }
      for (int64_t tap = 0; tap < taps; ++tap) {
        t.kc = count[tap];
        if (t.kc == 0) continue;
        t.runs = runs + tap * chunk_rows;
        t.b_rows = dy_rows + tap * chunk_rows;
        t.c = acc + tap * s.in_c * s.out_c;
        gk.run(t);
      }
    }
  });
  sum_partials(dw, dw_size, used, partial);
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
template <typename T, typename MakeArgs>
size_t block_gemm_bytes(const Conv2dShape& s, const MakeArgs& make_args) {
  const int64_t rows = block_rows<T>(s);
  const int64_t last = (s.batch * s.out_h * s.out_w) % rows;
  size_t bytes = gemm_workspace_bytes(make_args(rows), 1);
  if (last > 0) bytes = std::max(bytes, gemm_workspace_bytes(make_args(last), 1));
  return bytes;
}

template <typename T>
Slots forward_slots(const Conv2dShape& s) {
  const int64_t k = patch_size(s);
  const size_t gemm_bytes = block_gemm_bytes<T>(s, [&](int64_t rows) {
    GemmArgs<T> g = block_gemm<T>(rows, s.out_c, k);
    g.lda = k;
    g.ldb = s.out_c;
    g.ldc = s.out_c;
    return g;
  });
  return {align_up(block_rows<T>(s) * k * sizeof(T)), align_up(gemm_bytes), 0};
}

template <typename T>
Slots backward_data_slots(const Conv2dShape& s) {
  const int64_t rows = s.out_h * s.out_w;  // one image per block
  GemmArgs<T> g = block_gemm<T>(rows, patch_size(s), s.out_c);
  g.trans_b = true;
  g.lda = s.out_c;
  g.ldb = s.out_c;
  g.ldc = patch_size(s);
  return {align_up(rows * patch_size(s) * sizeof(T)), align_up(gemm_workspace_bytes(g, 1)), 0};
}

template <typename T>
Slots backward_weights_slots(const Conv2dShape& s) {
  const int64_t k = patch_size(s);
  const size_t gemm_bytes = block_gemm_bytes<T>(s, [&](int64_t rows) {
    GemmArgs<T> g = block_gemm<T>(k, s.out_c, rows);
    g.trans_a = true;
    g.lda = k;
    g.ldb = s.out_c;
    g.ldc = s.out_c;
    return g;
  });
  return {align_up(block_rows<T>(s) * k * sizeof(T)), align_up(gemm_bytes), align_up(k * s.out_c * sizeof(T))};
}

void require_workspace(size_t have, size_t need, const char* op) {
  if (have < need) {
    throw std::invalid_argument(std::string(op) + ": workspace of " + std::to_string(have) + " bytes, need " +
                                std::to_string(need));
  }
}

// Runs fn(chunk, row0, rows, patches, gemm_workspace) for every block of
// output rows, each thread on a contiguous range of blocks in its own slot of
// the workspace; `patches` is the block's im2col matrix (rows x patch), or x
// itself for a pointwise convolution.  Shared by forward and backward-weights.
// Returns the number of chunks that ran (at most max_chunks).
template <typename T, typename F>
int64_t for_each_patch_block(const Conv2dShape& s, const T* x, const Slots& slots, void* workspace,
                             int64_t max_chunks, const F& fn) {
  const int64_t total_rows = s.batch * s.out_h * s.out_w;
  const int64_t rows_per_block = block_rows<T>(s);
  const int64_t blocks = (total_rows + rows_per_block - 1) / rows_per_block;
  const bool pointwise = is_pointwise(s);
  return parallel_chunks(0, blocks, 1, max_chunks, [&](int64_t chunk, int64_t b0, int64_t b1) {
    auto* base = static_cast<unsigned char*>(workspace) + chunk * slots.slot();
    T* cols = reinterpret_cast<T*>(base);
    void* gemm_ws = base + slots.cols_bytes;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t row0 = b * rows_per_block;
      const int64_t rows = std::min(rows_per_block, total_rows - row0);
      const T* patches = x + row0 * s.in_c;
      if (!pointwise) {
        im2col(s, x, row0, rows, cols);
        patches = cols;
      }
      fn(chunk, row0, rows, patches, gemm_ws);
    }
  });
}

}  // namespace

// Forward and backward-weights of a convolution with a short patch (few input
// channels: a first layer) go to the direct kernels of conv2d_direct.h; K =
// kh*kw*in_c is far too short a GEMM inner dimension.  Measured (batch 64,
// relu, 1 thread, AVX-512, best of 60; ms, direct vs im2col+GEMM, fwd / bwd_w):
//   28x28x1->32 3x3 (K 9):   0.38 vs 2.35 / 0.29 vs 3.04
//   28x28x3->32 3x3 (K 27):  0.69 vs 3.13 / 0.69 vs 3.87
//   28x28x8->32 3x3 (K 72):  1.60 vs 4.92 / 1.54 vs 5.35
//   14x14x8->64 3x3 (K 72):  0.95 vs 1.20 / 0.83 vs 1.29
//   14x14x16->64 3x3 (K 144): 1.95 vs 1.87 / 1.67 vs 1.95  (break-even)
//   14x14x32->64 3x3 (K 288): 4.10 vs 3.63 / 3.28 vs 3.44
// The direct kernels reach ~120 GFLOP/s once K is a few dozen, so the cut sits
// at half the break-even: the GEMM gains with K, the direct path does not.
// Backward-data stays on im2col + GEMM (a first layer needs none).
bool use_direct_conv(const Conv2dShape& s) {
  constexpr int64_t kMaxDirectPatch = 72;  // e.g. 8 input channels x 3x3
  return patch_size(s) <= kMaxDirectPatch;
}

void check_conv2d_shape(const Conv2dShape& s) {
  const int64_t dims[] = {s.batch, s.in_h, s.in_w, s.in_c, s.kernel_h, s.kernel_w, s.out_c, s.out_h, s.out_w};
  for (int64_t d : dims) {
    if (d < 0) throw std::invalid_argument("conv2d: negative size");
  }
  if (s.stride_h < 1 || s.stride_w < 1 || s.dilation_h < 1 || s.dilation_w < 1 || s.pad_top < 0 || s.pad_left < 0) {
    throw std::invalid_argument("conv2d: stride and dilation must be >= 1 and padding >= 0");
  }
  if (s.kernel_h < 1 || s.kernel_w < 1 || s.in_c < 1 || s.out_c < 1) {
    throw std::invalid_argument("conv2d: empty kernel or channels");
  }
  // Any out_h/out_w is memory-safe: im2col and col2im bounds-check every tap
  // against the input, and the binding checks y/dy against out_h x out_w.
  if (s.out_h < 1 || s.out_w < 1) throw std::invalid_argument("conv2d: empty output");
}

template <typename T>
size_t conv2d_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  if (use_direct_conv(s)) return conv2d_direct_forward_workspace_bytes<T>(s, threads);
  if (use_indirect_forward(s)) return indirect_forward_bytes<T>(s, threads);
  return forward_slots<T>(s).slot() * static_cast<size_t>(std::max(threads, 1));
}

template <typename T>
size_t conv2d_backward_data_workspace_bytes(const Conv2dShape& s, int threads) {
  if (use_indirect_backward_data(s)) return indirect_backward_data_bytes<T>(s, threads);
  return backward_data_slots<T>(s).slot() * static_cast<size_t>(std::max(threads, 1));
}

template <typename T>
size_t conv2d_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  if (use_direct_conv(s)) return conv2d_direct_backward_weights_workspace_bytes<T>(s, threads);
  if (use_indirect_backward_weights(s)) return gather_layout<T>(s).total(threads);
  return backward_weights_slots<T>(s).slot() * static_cast<size_t>(std::max(threads, 1));
}

template <typename T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, Activation act, T* y,
                    void* workspace, size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  threads = std::max(threads, 1);
  if (use_direct_conv(s)) {
    conv2d_direct_forward(s, x, w, bias, act, y, workspace, workspace_bytes, threads);
    return;
  }
  require_workspace(workspace_bytes, conv2d_forward_workspace_bytes<T>(s, threads), "conv2d");
  if (use_indirect_forward(s)) {
    indirect_forward(s, x, w, bias, act, y, workspace, threads);
    return;
  }
  const Slots slots = forward_slots<T>(s);
  const int64_t k = patch_size(s);
  for_each_patch_block(s, x, slots, workspace, threads,
                       [&](int64_t, int64_t row0, int64_t rows, const T* patches, void* gemm_ws) {
                         GemmArgs<T> g = block_gemm<T>(rows, s.out_c, k);
                         g.a = patches;
                         g.lda = k;
                         g.b = w;
                         g.ldb = s.out_c;
                         g.c = y + row0 * s.out_c;
                         g.ldc = s.out_c;
                         g.bias = bias;
                         g.act = act;
                         gemm(g, gemm_ws, slots.gemm_bytes, 1);
                       });
}

template <typename T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx, void* workspace,
                          size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  threads = std::max(threads, 1);
  require_workspace(workspace_bytes, conv2d_backward_data_workspace_bytes<T>(s, threads), "conv2d_backward_data");
  if (use_indirect_backward_data(s)) {
    indirect_backward_data(s, dy, w, dx, workspace, threads);
    return;
  }
  const Slots slots = backward_data_slots<T>(s);
  const int64_t image_rows = s.out_h * s.out_w;
  const int64_t k = patch_size(s);
  const bool pointwise = is_pointwise(s);
  parallel_chunks(0, s.batch, 1, threads, [&](int64_t chunk, int64_t n0, int64_t n1) {
    auto* base = static_cast<unsigned char*>(workspace) + chunk * slots.slot();
    T* dcols = reinterpret_cast<T*>(base);
    void* gemm_ws = base + slots.cols_bytes;
    for (int64_t n = n0; n < n1; ++n) {
      T* dx_image = dx + n * s.in_h * s.in_w * s.in_c;
      GemmArgs<T> g = block_gemm<T>(image_rows, k, s.out_c);
      g.a = dy + n * image_rows * s.out_c;
      g.lda = s.out_c;
      g.b = w;
      g.ldb = s.out_c;
      g.trans_b = true;
      g.ldc = k;
      if (pointwise) {  // dcols is dx itself
        g.c = dx_image;
        gemm(g, gemm_ws, slots.gemm_bytes, 1);
        continue;
      }
      g.c = dcols;
      gemm(g, gemm_ws, slots.gemm_bytes, 1);
      std::fill(dx_image, dx_image + s.in_h * s.in_w * s.in_c, T(0));
      col2im_add(s, dcols, n * image_rows, image_rows, dx);
    }
  });
}

template <typename T>
void conv2d_backward_weights(const Conv2dShape& s, const T* dy, const T* x, T* dw, void* workspace,
                             size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  threads = std::max(threads, 1);
  if (use_direct_conv(s)) {
    conv2d_direct_backward_weights(s, dy, x, dw, workspace, workspace_bytes, threads);
    return;
  }
  require_workspace(workspace_bytes, conv2d_backward_weights_workspace_bytes<T>(s, threads),
                    "conv2d_backward_weights");
  if (use_indirect_backward_weights(s)) {
    indirect_backward_weights(s, dy, x, dw, workspace, threads);
    return;
  }
  const Slots slots = backward_weights_slots<T>(s);
  const int64_t total_rows = s.batch * s.out_h * s.out_w;
  const int64_t blocks = (total_rows + block_rows<T>(s) - 1) / block_rows<T>(s);
  const int64_t k = patch_size(s);
  const int64_t dw_size = k * s.out_c;
  auto partial = [&](int64_t chunk) {
    return reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + chunk * slots.slot() + slots.cols_bytes +
                                slots.gemm_bytes);
  };
  const int64_t max_chunks = std::min<int64_t>(threads, std::max<int64_t>(blocks, 1));
  for (int64_t c = 0; c < max_chunks; ++c) std::fill(partial(c), partial(c) + dw_size, T(0));
  const int64_t used = for_each_patch_block(s, x, slots, workspace, max_chunks,
                       [&](int64_t chunk, int64_t row0, int64_t rows, const T* patches, void* gemm_ws) {
                         GemmArgs<T> g = block_gemm<T>(k, s.out_c, rows);
                         g.a = patches;
                         g.lda = k;
                         g.trans_a = true;
                         g.b = dy + row0 * s.out_c;
                         g.ldb = s.out_c;
                         g.c = partial(chunk);
                         g.ldc = s.out_c;
                         g.beta = T(1);
                         gemm(g, gemm_ws, slots.gemm_bytes, 1);
                       });
  sum_partials(dw, dw_size, used, partial);
}

#define FASTNN_INSTANTIATE(T)                                                                              \
  template size_t conv2d_forward_workspace_bytes<T>(const Conv2dShape&, int);                              \
  template size_t conv2d_backward_data_workspace_bytes<T>(const Conv2dShape&, int);                        \
  template size_t conv2d_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                     \
  template void conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*, void*, \
                                  size_t, int);                                                            \
  template void conv2d_backward_data<T>(const Conv2dShape&, const T*, const T*, T*, void*, size_t, int);   \
  template void conv2d_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, size_t, int);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)

}  // namespace fastnn::cpu
