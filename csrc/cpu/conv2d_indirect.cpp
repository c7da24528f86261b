// Convolution as indirect GEMM, for layers with >= 16 channels per tap, and (row
// runs) for layers with fewer, a kernel row of pixels per run.
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
//
// Backward-weights, per tap t:  dw[t] (in_c x out_c) += runs(t)^T @ dy over
// the pixels whose tap t reads inside the image (forward's runs; taps in the
// padding would add zeros, so they are left out of the lists).  Each thread
// takes a contiguous range of chunks of output rows (short enough that a
// chunk's dy rows stay in L1 while every tile of dw[t] passes over them) and
// accumulates into its own partial dw; the partials are added in thread order
// (deterministic for a thread count).
#include <algorithm>
#include <cstring>

#include "common/align.h"
#include "common/parallel.h"
#include "cpu/conv2d_algorithms.h"
#include "cpu/gemm/gemm_kernels.h"
#include "cpu/machine.h"

namespace fastnn::cpu {
namespace {

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

// What both indirect convolutions multiply: C (rows x nc, row stride nc) from each row's
// taps runs of kc elements against the packed B (b_tap_stride apart per tap,
// b_panel_stride per NR-column panel), with the bias and activation of the epilogue.
template <typename T>
gemm_impl::IndirectTask<T> indirect_task(int64_t taps, int64_t kc, int64_t nc, const T* packed, int64_t b_tap_stride,
                                         int64_t b_panel_stride, T* c, const T* bias, Activation act) {
  gemm_impl::IndirectTask<T> task{};
  task.nc = nc;
  task.taps = taps;
  task.kc = kc;
  task.b = packed;
  task.b_tap_stride = b_tap_stride;
  task.b_panel_stride = b_panel_stride;
  task.c = c;
  task.ldc = nc;
  task.ep = gemm_impl::Epilogue<T>{T(1), T(0), true, true, bias, act};
  return task;
}

// Whether run_indirect gives each thread its own NR-column panels of C over every row
// (packing only those panels of B) rather than its own chunks of rows over every panel
// (B packed first, by one thread): where there are too few chunks to share out evenly
// and the panels divide among the threads.  Intel Xeon model 167, 2 threads, float32,
// 3x3 stride-2 forwards at batch 1: 128->256 at 28x28 (3 chunks) 0.51 -> 0.39 ms,
// 256->512 at 14x14 (1 chunk) 1.14 -> 0.61; 64->128 at 56x56 (9 chunks) level; at batch 8
// (73 chunks) rows ran 5% faster.
inline bool indirect_by_panels(int64_t panels, int64_t chunks, int threads) {
  return threads > 1 && panels % threads == 0 && chunks < 4 * threads;
}

// Runs the indirect GEMM over total_rows output rows, task.nc columns, with B packed by
// pack(col0, col1) (columns [col0, col1), col0 a multiple of NR, into their panels)
// after setup(row0, row1) has filled rows [row0, row1) of setup_rows (the run offsets
// the fill reads).
// By rows: chunks that threads take in contiguous ranges, each with its own pointer
// table, which fill(row0, rows, table) writes for the chunk's rows; first the setup and
// B's packing, shared out over the threads where B has a panel for each (one panel
// packed by one thread while the other waited measured 1% slower on ResNet's 7x7
// stem: the fork and join cost more than half of its short offsets table saves).
// By panels: the setup first, then each thread packs its panels and runs every chunk
// over them.
template <typename T, typename Pack, typename Setup, typename Fill>
void run_indirect(const gemm_impl::IndirectKernel<T>& ik, const IndirectLayout& l, int64_t total_rows,
                  gemm_impl::IndirectTask<T> task, unsigned char* tables, const Pack& pack, int64_t setup_rows,
                  const Setup& setup, const Fill& fill, int threads) {
  const int64_t chunk_rows = indirect_chunk_rows(ik);
  const int64_t chunks = (total_rows + chunk_rows - 1) / chunk_rows;
  const int64_t panels = (task.nc + ik.nr - 1) / ik.nr;
  T* const c0 = task.c;
  const bool by_panels = indirect_by_panels(panels, chunks, threads);
  if (!by_panels && threads > 1 && panels >= threads) {
    run_chunks(0, threads, threads, [&](int64_t part, int64_t, int64_t) {
      setup(setup_rows * part / threads, setup_rows * (part + 1) / threads);
      const int64_t p0 = panels * part / threads, p1 = panels * (part + 1) / threads;
      pack(p0 * ik.nr, std::min(p1 * ik.nr, task.nc));
    });
  } else {
    setup(int64_t{0}, setup_rows);
    if (!by_panels) pack(int64_t{0}, task.nc);
  }
  if (by_panels) {
    parallel_chunks(0, panels, 1, threads, [&](int64_t slot, int64_t p0, int64_t p1) {
      const int64_t col0 = p0 * ik.nr, col1 = std::min(p1 * ik.nr, task.nc);
      pack(col0, col1);
      auto** table = reinterpret_cast<const T**>(tables + slot * l.table_bytes);
      gemm_impl::IndirectTask<T> t = task;
      t.rows = table;
      t.b = task.b + p0 * task.b_panel_stride;
      t.nc = col1 - col0;
      if (t.ep.bias != nullptr) t.ep.bias += col0;
      for (int64_t q = 0; q < chunks; ++q) {
        const int64_t row0 = q * chunk_rows;
        t.mc = std::min(chunk_rows, total_rows - row0);
        fill(row0, t.mc, table);
        t.c = c0 + row0 * t.ldc + col0;
        ik.run(t);
      }
    });
    return;
  }
  parallel_chunks(0, chunks, 1, threads, [&](int64_t slot, int64_t q0, int64_t q1) {
    auto** table = reinterpret_cast<const T**>(tables + slot * l.table_bytes);
    gemm_impl::IndirectTask<T> t = task;
    t.rows = table;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t row0 = q * chunk_rows;
      t.mc = std::min(chunk_rows, total_rows - row0);
      fill(row0, t.mc, table);
      t.c = c0 + row0 * t.ldc;
      ik.run(t);
    }
  });
}

// run_indirect over batch x spatial rows whose runs come from a table of offsets
// (fill_runs), the same for every image, image_elems apart from src; offsets(row0, row1)
// fills the table's rows [row0, row1) of offset_rows.
template <typename T, typename Pack, typename Offsets>
void run_indirect_offsets(const gemm_impl::IndirectKernel<T>& ik, const IndirectLayout& l, int64_t batch,
                          int64_t spatial, const T* src, int64_t image_elems, gemm_impl::IndirectTask<T> task,
                          void* workspace, const Pack& pack, int64_t offset_rows, const Offsets& offsets,
                          int threads) {
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, workspace);
  task.zero = buf.zero;
  run_indirect(ik, l, batch * spatial, task, buf.tables, pack, offset_rows, offsets,
               [&](int64_t row0, int64_t rows, const T** table) {
                 fill_runs(buf.offsets, spatial, task.taps, src, image_elems, buf.zero, row0, rows, table);
               },
               threads);
}

// Forward's runs: tap (i, j) of output pixel (oh, ow) reads input pixel
// (oh*stride - pad + i*dil, ow*stride - pad + j*dil); output rows [oh0, oh1).
void forward_offsets(const Conv2dShape& s, int64_t* offsets, int64_t oh0, int64_t oh1) {
  offsets += oh0 * s.out_w * s.kernel_h * s.kernel_w;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
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
// (ih + pad - i*dil, iw + pad - j*dil) (stride 1); dx rows [ih0, ih1).
void backward_data_offsets(const Conv2dShape& s, int64_t* offsets, int64_t ih0, int64_t ih1) {
  offsets += ih0 * s.in_w * s.kernel_h * s.kernel_w;
  for (int64_t ih = ih0; ih < ih1; ++ih) {
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

template <typename T>
IndirectLayout indirect_forward_layout(const Conv2dShape& s, const gemm_impl::IndirectKernel<T>& ik) {
  return indirect_layout(ik, s.kernel_h * s.kernel_w, s.in_c, s.out_c, s.out_h * s.out_w);
}

template <typename T>
IndirectLayout indirect_backward_data_layout(const Conv2dShape& s, const gemm_impl::IndirectKernel<T>& ik) {
  return indirect_layout(ik, s.kernel_h * s.kernel_w, s.out_c, s.in_c, s.in_h * s.in_w);
}

// Rows per chunk: dy's rows of a chunk take half of the L1d cache_sizes() reports
// (measured on the seed's conv2 on Sapphire Rapids, 48 KiB L1d, 1 thread: 16-24 KiB
// 3.2 ms, 8 KiB 3.5, 32-128 KiB 3.8-4.0).
template <typename T>
int64_t gather_chunk_rows(const Conv2dShape& s) {
  const int64_t chunk_bytes = cache_sizes().l1d / 2;
  return std::clamp<int64_t>(chunk_bytes / (s.out_c * int64_t(sizeof(T))), 16, 512);
}

struct GatherLayout {
  size_t offsets_bytes;                          // shared
  size_t table_bytes, count_bytes, partial_bytes;  // per thread
  size_t slot() const { return table_bytes + count_bytes + partial_bytes; }
  size_t total(int threads) const { return offsets_bytes + slot() * size_t(std::max(threads, 1)); }
};

// taps runs of `run` values per output pixel (kernel_h * kernel_w runs of in_c, or
// kernel_h rows of kernel_w * in_c).
template <typename T>
GatherLayout gather_layout(const Conv2dShape& s, int64_t taps, int64_t run) {
  GatherLayout l;
  l.offsets_bytes = align_up(size_t(s.out_h * s.out_w * taps) * sizeof(int64_t));
  l.table_bytes = align_up(size_t(2 * gather_chunk_rows<T>(s) * taps) * sizeof(const T*));
  l.count_bytes = align_up(size_t(taps) * sizeof(int64_t));
  l.partial_bytes = align_up(size_t(taps * run * s.out_c) * sizeof(T));
  return l;
}

template <typename T>
GatherLayout gather_layout(const Conv2dShape& s) {
  return gather_layout<T>(s, s.kernel_h * s.kernel_w, s.in_c);
}

}  // namespace

template <typename T>
size_t indirect_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  return indirect_forward_layout(s, gemm_impl::gemm_kernels<T>().indirect(s.out_c)).total(threads);
}

template <typename T>
size_t indirect_backward_data_workspace_bytes(const Conv2dShape& s, int threads) {
  return indirect_backward_data_layout(s, gemm_impl::gemm_kernels<T>().indirect(s.in_c)).total(threads);
}

template <typename T>
size_t indirect_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  return gather_layout<T>(s).total(threads);
}

template <typename T>
void indirect_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                      T* y_nhwc, void* workspace, int threads) {
  const auto ik = gemm_impl::gemm_kernels<T>().indirect(s.out_c);
  const int64_t taps = s.kernel_h * s.kernel_w;
  const IndirectLayout l = indirect_forward_layout(s, ik);
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, workspace);
  std::fill(buf.zero, buf.zero + s.in_c, T(0));

  const int64_t k = taps * s.in_c;
  const auto task = indirect_task<T>(taps, s.in_c, s.out_c, buf.packed, s.in_c * ik.nr, k * ik.nr, y_nhwc, bias, act);
  auto pack = [&](int64_t col0, int64_t col1) {  // panels of (taps*in_c) x NR
    ik.pack_b(k, col1 - col0, w_hwio + col0, s.out_c, false, buf.packed + col0 / ik.nr * task.b_panel_stride);
  };
  run_indirect_offsets(ik, l, s.batch, s.out_h * s.out_w, x_nhwc, s.in_h * s.in_w * s.in_c, task, workspace, pack,
                       s.out_h, [&](int64_t oh0, int64_t oh1) { forward_offsets(s, buf.offsets, oh0, oh1); },
                       threads);
}

// Row runs, for layers with fewer than 16 input channels (a first layer, LeNet's 6): in
// NHWC a kernel row's kernel_w pixels are one run of kernel_w * in_c values, and w's
// rows of taps are laid out the same way, so the GEMM takes kernel_h runs of that length
// per output pixel instead of kernel_h * kernel_w runs of in_c.  Padding in w is copied
// in (a padded image of in_c-wide pixels is small); padding in h is the zero run.
namespace {

struct RowRuns {
  int64_t pad_right, padded_w;
  bool copy;
};

RowRuns row_runs(const Conv2dShape& s) {
  RowRuns r;
  r.pad_right = std::max<int64_t>(0, (s.out_w - 1) * s.stride_w + s.kernel_w - s.in_w - s.pad_left);
  r.padded_w = s.in_w + s.pad_left + r.pad_right;
  r.copy = s.pad_left > 0 || r.pad_right > 0;
  return r;
}

template <typename T>
size_t padded_image_bytes(const Conv2dShape& s) {
  const RowRuns r = row_runs(s);
  return r.copy ? align_up(size_t(s.batch * s.in_h * r.padded_w * s.in_c) * sizeof(T)) : 0;
}

// x with the w padding written in (workspace, padded_image_bytes), or x itself.
template <typename T>
const T* padded_image(const Conv2dShape& s, const RowRuns& r, const T* x_nhwc, void* workspace, int threads) {
  if (!r.copy) return x_nhwc;
  T* padded = static_cast<T*>(workspace);
  const int64_t row_elems = r.padded_w * s.in_c;
  parallel_for(0, s.batch * s.in_h, 64, threads, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      T* dst = padded + q * row_elems;
      std::fill(dst, dst + s.pad_left * s.in_c, T(0));
      std::copy_n(x_nhwc + q * s.in_w * s.in_c, s.in_w * s.in_c, dst + s.pad_left * s.in_c);
      std::fill(dst + (s.pad_left + s.in_w) * s.in_c, dst + row_elems, T(0));
    }
  });
  return padded;
}

// Kernel row i of output pixel (oh, ow) starts at padded pixel (ih, ow * stride_w),
// ih = oh * stride_h - pad_top + i * dilation_h; -1 where ih is in the padding.
inline void row_offsets(const Conv2dShape& s, const RowRuns& r, int64_t* offsets) {
  const int64_t row_elems = r.padded_w * s.in_c;
  for (int64_t oh = 0; oh < s.out_h; ++oh) {
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      for (int64_t i = 0; i < s.kernel_h; ++i) {
        const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
        *offsets++ = ih >= 0 && ih < s.in_h ? ih * row_elems + ow * s.stride_w * s.in_c : -1;
      }
    }
  }
}

// The forward's offsets are per output row oh and kernel row i (the padded image's
// row ih times its width, or -1 in the padding): the same for every ow, so
// fill_row_runs adds ow's column.
template <typename T>
IndirectLayout indirect_rows_layout(const Conv2dShape& s, const gemm_impl::IndirectKernel<T>& ik) {
  return indirect_layout(ik, s.kernel_h, s.kernel_w * s.in_c, s.out_c, s.out_h);
}

inline void output_row_offsets(const Conv2dShape& s, const RowRuns& r, int64_t* offsets, int64_t oh0,
                               int64_t oh1) {
  offsets += oh0 * s.kernel_h;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    for (int64_t i = 0; i < s.kernel_h; ++i) {
      const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
      *offsets++ = ih >= 0 && ih < s.in_h ? ih * r.padded_w * s.in_c : -1;
    }
  }
}

// The kernel_h runs of output rows [row0, row0 + rows) of the batch (image: the
// padded batch, image_elems apart; offsets from output_row_offsets).
template <typename T>
void fill_row_runs(const Conv2dShape& s, const int64_t* offsets, const T* image, int64_t image_elems,
                   const T* zero, int64_t row0, int64_t rows, const T** table) {
  const int64_t spatial = s.out_h * s.out_w, kh = s.kernel_h;
  int64_t n = row0 / spatial, oh = row0 % spatial / s.out_w, ow = row0 % s.out_w;
  for (int64_t q = 0; q < rows; ++q, table += kh) {
    const T* pixel = image + n * image_elems + ow * s.stride_w * s.in_c;
    const int64_t* off = offsets + oh * kh;
    for (int64_t i = 0; i < kh; ++i) table[i] = off[i] < 0 ? zero : pixel + off[i];
    if (++ow == s.out_w) {
      ow = 0;
      if (++oh == s.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

}  // namespace

template <typename T>
size_t indirect_rows_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  return padded_image_bytes<T>(s) +
         indirect_rows_layout(s, gemm_impl::gemm_kernels<T>().indirect(s.out_c)).total(threads);
}

template <typename T>
void indirect_rows_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act,
                           T* y_nhwc, void* workspace, int threads) {
  const auto ik = gemm_impl::gemm_kernels<T>().indirect(s.out_c);
  const RowRuns r = row_runs(s);
  const int64_t kc = s.kernel_w * s.in_c, row_elems = r.padded_w * s.in_c;
  const T* image = padded_image(s, r, x_nhwc, workspace, threads);
  void* rest = static_cast<unsigned char*>(workspace) + padded_image_bytes<T>(s);
  const IndirectLayout l = indirect_rows_layout(s, ik);
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, rest);
  std::fill(buf.zero, buf.zero + kc, T(0));
  auto task = indirect_task<T>(s.kernel_h, kc, s.out_c, buf.packed, kc * ik.nr, s.kernel_h * kc * ik.nr, y_nhwc,
                               bias, act);
  task.zero = buf.zero;
  const int64_t image_elems = s.in_h * row_elems;
  auto pack = [&](int64_t col0, int64_t col1) {  // panels of (kh*kc) x NR
    ik.pack_b(s.kernel_h * kc, col1 - col0, w_hwio + col0, s.out_c, false,
              buf.packed + col0 / ik.nr * task.b_panel_stride);
  };
  run_indirect(ik, l, s.batch * s.out_h * s.out_w, task, buf.tables, pack, s.out_h,
               [&](int64_t oh0, int64_t oh1) { output_row_offsets(s, r, buf.offsets, oh0, oh1); },
               [&](int64_t row0, int64_t rows, const T** table) {
                 fill_row_runs(s, buf.offsets, image, image_elems, buf.zero, row0, rows, table);
               },
               threads);
}

template <typename T>
void indirect_backward_data(const Conv2dShape& s, const T* dy_nhwc, const T* w_hwio, T* dx_nhwc, void* workspace,
                            int threads) {
  const auto ik = gemm_impl::gemm_kernels<T>().indirect(s.in_c);
  const int64_t taps = s.kernel_h * s.kernel_w;
  const IndirectLayout l = indirect_backward_data_layout(s, ik);
  const IndirectBuffers<T> buf = indirect_buffers<T>(l, workspace);
  const int64_t panels = (s.in_c + ik.nr - 1) / ik.nr;
  std::fill(buf.zero, buf.zero + s.out_c, T(0));

  const auto task = indirect_task<T>(taps, s.out_c, s.in_c, buf.packed, panels * s.out_c * ik.nr, s.out_c * ik.nr,
                                     dx_nhwc, nullptr, Activation::none);
  auto pack = [&](int64_t col0, int64_t col1) {  // tap t: w[t]^T (out_c x in_c) in NR-column panels
    for (int64_t t = 0; t < taps; ++t) {
      ik.pack_b(s.out_c, col1 - col0, w_hwio + (t * s.in_c + col0) * s.out_c, s.out_c, true,
                buf.packed + t * task.b_tap_stride + col0 / ik.nr * task.b_panel_stride);
    }
  };
  run_indirect_offsets(ik, l, s.batch, s.in_h * s.in_w, dy_nhwc, s.out_h * s.out_w * s.out_c, task, workspace, pack,
                       s.in_h, [&](int64_t ih0, int64_t ih1) { backward_data_offsets(s, buf.offsets, ih0, ih1); },
                       threads);
}

namespace {

// dw (taps x run x out_c) = sum over the output pixels of each tap's run of x (image,
// image_elems apart per image, at offsets[pixel * taps + tap] or -1 for none) times the
// pixel's dy row; workspace laid out by l, the offsets filled.
template <typename T>
void gather_backward_weights(const Conv2dShape& s, int64_t taps, int64_t run, const GatherLayout& l,
                             unsigned char* base, const T* image_base, int64_t image_elems, const T* dy_nhwc,
                             T* dw_hwio, int threads) {
  const auto gk = gemm_impl::gemm_kernels<T>().gather(run, s.out_c);
  const auto* offsets = reinterpret_cast<const int64_t*>(base);

  const int64_t spatial = s.out_h * s.out_w;
  const int64_t total_rows = s.batch * spatial;
  const int64_t chunk_rows = gather_chunk_rows<T>(s);
  const int64_t chunks = (total_rows + chunk_rows - 1) / chunk_rows;
  const int64_t dw_size = taps * run * s.out_c;
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
    t.mc = run;
    t.nc = s.out_c;
    t.ldc = s.out_c;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t row0 = q * chunk_rows;
      const int64_t rows = std::min(chunk_rows, total_rows - row0);
      std::fill(count, count + taps, int64_t{0});
      int64_t n = row0 / spatial, pos = row0 % spatial;
      for (int64_t r = 0; r < rows; ++r) {
        const T* image = image_base + n * image_elems;
        const int64_t* off = offsets + pos * taps;
        for (int64_t tap = 0; tap < taps; ++tap) {
          if (off[tap] < 0) continue;
          const int64_t k = tap * chunk_rows + count[tap]++;
          runs[k] = image + off[tap];
          dy_rows[k] = dy_nhwc + (row0 + r) * s.out_c;
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
        t.c = acc + tap * run * s.out_c;
        gk.run(t);
      }
    }
  });
  sum_partials(dw_hwio, dw_size, used, partial);
}

}  // namespace

template <typename T>
void indirect_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                               void* workspace, int threads) {
  const GatherLayout l = gather_layout<T>(s);
  auto* base = static_cast<unsigned char*>(workspace);
  forward_offsets(s, reinterpret_cast<int64_t*>(base), 0, s.out_h);
  gather_backward_weights(s, s.kernel_h * s.kernel_w, s.in_c, l, base, x_nhwc, s.in_h * s.in_w * s.in_c, dy_nhwc,
                          dw_hwio, threads);
}

template <typename T>
size_t indirect_rows_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  return padded_image_bytes<T>(s) + gather_layout<T>(s, s.kernel_h, s.kernel_w * s.in_c).total(threads);
}

template <typename T>
void indirect_rows_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio,
                                    void* workspace, int threads) {
  const RowRuns r = row_runs(s);
  const T* image = padded_image(s, r, x_nhwc, workspace, threads);
  auto* base = static_cast<unsigned char*>(workspace) + padded_image_bytes<T>(s);
  row_offsets(s, r, reinterpret_cast<int64_t*>(base));
  const GatherLayout l = gather_layout<T>(s, s.kernel_h, s.kernel_w * s.in_c);
  gather_backward_weights(s, s.kernel_h, s.kernel_w * s.in_c, l, base, image, s.in_h * r.padded_w * s.in_c,
                          dy_nhwc, dw_hwio, threads);
}

#define FASTNN_INSTANTIATE(T)                                                                                \
  template size_t indirect_forward_workspace_bytes<T>(const Conv2dShape&, int);                              \
  template size_t indirect_rows_forward_workspace_bytes<T>(const Conv2dShape&, int);                         \
  template void indirect_rows_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*,    \
                                         void*, int);                                                        \
  template size_t indirect_rows_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                \
  template void indirect_rows_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);   \
  template size_t indirect_backward_data_workspace_bytes<T>(const Conv2dShape&, int);                        \
  template size_t indirect_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                     \
  template void indirect_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*, void*,   \
                                    int);                                                                    \
  template void indirect_backward_data<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);           \
  template void indirect_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, int);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
