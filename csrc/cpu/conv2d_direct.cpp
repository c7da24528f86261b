// Direct-convolution entry points: size and carve the workspace, pack the
// weights into zero-padded channel blocks, split batch x out_h rows across
// threads and run the row kernel compiled for the selected ISA on each chunk
// (conv2d_direct_kernels.h says how the kernels block their registers).
//
// Workspace: [tap offsets | packed weights | packed bias], shared and read
// only, then one slot per chunk: [padded input rows of one image | dw partial
// (backward only)].  The weight gradient adds the chunks' partial sums in
// chunk order: deterministic for a given thread count.
#include "cpu/conv2d_direct.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/align.h"
#include "common/parallel.h"
#include "common/shapes.h"
#include "cpu/conv2d_algorithms.h"
#include "cpu/conv2d_direct_table.h"
#include "cpu/dispatch.h"
#include "cpu/pool.h"

namespace fastnn::cpu {

namespace {

// The selected ISA's row kernels, resolved once.
template <typename T>
const DirectConvKernels<T>& direct_conv_kernels() {
  return resolve_kernel_table(&portable::direct_conv_kernel_table<T>, &avx2::direct_conv_kernel_table<T>,
                              &avx512::direct_conv_kernel_table<T>);
}

constexpr int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// A chunk should hold at least this many multiply-adds to be worth a fork.
constexpr int64_t kGrainMacs = 1 << 16;

struct Layout {
  DirectConvPlan plan;
  size_t offsets_bytes, weights_bytes, bias_bytes;  // shared
  size_t pad_bytes, partial_bytes, rows_bytes;      // per chunk
  size_t shared() const { return offsets_bytes + weights_bytes + bias_bytes; }
  size_t slot() const { return pad_bytes + partial_bytes + rows_bytes; }
};

template <typename T>
Layout layout(const Conv2dShape& s, bool backward) {
  Layout l{};
  DirectConvPlan& p = l.plan;
  p.shape = s;
  p.taps = s.kernel_h * s.kernel_w * s.in_c;
  // Tiles: whole output rows while a window's rows of them fit the cap, then as
  // many rows as fit; narrower tiles only where one row does not.
  const int64_t cap = kDirectPadBytes / static_cast<int64_t>(sizeof(T) * s.in_c);  // padded pixels
  const int64_t span_h = window_extent(s.kernel_h, s.dilation_h), span_w = window_extent(s.kernel_w, s.dilation_w);
  p.tile_w = s.out_w;
  if (span_h * cells_of(p.tile_w, span_w, s.stride_w) > cap) {
    const int64_t fit = cap / span_h;  // padded columns a window's rows can have
    p.tile_w = std::clamp<int64_t>(windows_in(fit, span_w, s.stride_w), 1, s.out_w);
  }
  p.padded_w = cells_of(p.tile_w, span_w, s.stride_w);
  p.narrow = direct_conv_is_narrow<T>(s);
  // Narrow rows are read a vector pair at a time from any column below tile_w, so
  // each has a block of columns of slack (zeros) beyond the tile.
  p.pitch = p.narrow ? round_up(p.tile_w, kDirectOcBlock<T>) + span_w - 1 : p.padded_w;
  p.band_rows = std::clamp<int64_t>(windows_in(cap / p.pitch, span_h, s.stride_h), 1, s.out_h);
  p.padded_h = cells_of(p.band_rows, span_h, s.stride_h);
  p.oc_blocks = (s.out_c + kDirectOcBlock<T> - 1) / kDirectOcBlock<T>;
  l.offsets_bytes = align_up(p.taps * sizeof(int64_t));
  l.weights_bytes = backward ? 0 : align_up(p.oc_blocks * p.taps * kDirectOcBlock<T> * sizeof(T));
  l.bias_bytes = backward ? 0 : align_up(p.oc_blocks * kDirectOcBlock<T> * sizeof(T));
  l.pad_bytes = align_up(p.padded_h * p.pitch * s.in_c * sizeof(T));
  if (p.narrow && backward) {  // dy's band, planar, after the input's
    p.dy_pitch = round_up(p.tile_w, kDirectOcBlock<T>);
    p.dy_offset = static_cast<int64_t>(l.pad_bytes / sizeof(T));
    l.pad_bytes += align_up(p.band_rows * s.out_c * p.dy_pitch * sizeof(T));
    p.lanes_offset = static_cast<int64_t>(l.pad_bytes / sizeof(T));
    l.pad_bytes += align_up(p.taps * s.out_c * 64);
  }
  l.partial_bytes = backward ? align_up(p.taps * s.out_c * sizeof(T)) : 0;
  l.rows_bytes = 0;
  return l;
}

// Forward with a max-pool fused after it: each chunk also holds the two
// output rows one pooled row reads.
template <typename T>
Layout pooled_layout(const Conv2dShape& s) {
  Layout l = layout<T>(s, false);
  l.rows_bytes = align_up(2 * s.out_w * s.out_c * sizeof(T));
  return l;
}

// The 2x2 / stride-2 pool over two output rows held in a scratch.
Pool2dShape pool_of_two_rows(const Conv2dShape& s) {
  Pool2dShape p{};
  p.batch = 1;
  p.height = 2;
  p.width = s.out_w;
  p.channels = s.out_c;
  p.out_height = 1;
  p.out_width = s.out_w / 2;
  p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = 2;
  return p;
}


int64_t row_grain(const Conv2dShape& s) {
  const int64_t macs_per_row = std::max<int64_t>(s.out_w * s.out_c * s.kernel_h * s.kernel_w * s.in_c, 1);
  return (kGrainMacs + macs_per_row - 1) / macs_per_row;
}

// Chunks the rows are split into; the workspace has a slot for each.
int64_t chunk_count(const Conv2dShape& s, int threads) {
  const int64_t rows = s.batch * s.out_h;
  const int64_t grain = row_grain(s);
  return std::max<int64_t>(1, std::min<int64_t>(std::max(threads, 1), (rows + grain - 1) / grain));
}

// Where each tap (HWIO order) reads, from a window's first padded pixel:
// interleaved channels, or, in a narrow plan, channel planes of padded_h x pitch.
void fill_tap_offsets(const DirectConvPlan& p, int64_t* offsets) {
  const Conv2dShape& s = p.shape;
  int64_t t = 0;
  for (int64_t i = 0; i < s.kernel_h; ++i) {
    for (int64_t j = 0; j < s.kernel_w; ++j) {
      for (int64_t c = 0; c < s.in_c; ++c) {
        offsets[t++] = p.narrow ? (c * p.padded_h + i * s.dilation_h) * p.pitch + j * s.dilation_w
                                : (i * s.dilation_h * p.padded_w + j * s.dilation_w) * s.in_c + c;
      }
    }
  }
}

// Tap offsets, and the weights and bias packed into zero-padded channel blocks
// (w: taps x out_c -> oc_blocks x taps x kDirectOcBlock), in the shared part.
template <typename T>
void pack_forward(Layout& l, const T* w, const T* bias, unsigned char* base, T** w_packed, T** bias_packed) {
  DirectConvPlan& plan = l.plan;
  const Conv2dShape& s = plan.shape;
  auto* offsets = reinterpret_cast<int64_t*>(base);
  *w_packed = reinterpret_cast<T*>(base + l.offsets_bytes);
  *bias_packed = reinterpret_cast<T*>(base + l.offsets_bytes + l.weights_bytes);
  fill_tap_offsets(plan, offsets);
  plan.tap_offsets = offsets;
  constexpr int64_t B = kDirectOcBlock<T>;
  T* wp = *w_packed;
  std::fill(wp, wp + plan.oc_blocks * plan.taps * B, T(0));
  std::fill(*bias_packed, *bias_packed + plan.oc_blocks * B, T(0));
  for (int64_t t = 0; t < plan.taps; ++t) {
    for (int64_t o = 0; o < s.out_c; ++o) wp[((o / B) * plan.taps + t) * B + o % B] = w[t * s.out_c + o];
  }
  if (bias != nullptr) std::copy(bias, bias + s.out_c, *bias_packed);
}

}  // namespace

template <typename T>
size_t conv2d_direct_forward_workspace_bytes(const Conv2dShape& s, int threads) {
  const Layout l = layout<T>(s, false);
  return l.shared() + l.slot() * static_cast<size_t>(chunk_count(s, threads));
}

template <typename T>
size_t conv2d_direct_backward_weights_workspace_bytes(const Conv2dShape& s, int threads) {
  const Layout l = layout<T>(s, true);
  return l.shared() + l.slot() * static_cast<size_t>(chunk_count(s, threads));
}

template <typename T>
void conv2d_direct_forward(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, Activation act, T* y_nhwc,
                           void* workspace, size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  require_workspace(workspace_bytes, conv2d_direct_forward_workspace_bytes<T>(s, threads), "conv2d");
  Layout l = layout<T>(s, false);
  const DirectConvPlan& plan = l.plan;
  auto* base = static_cast<unsigned char*>(workspace);
  unsigned char* slots = base + l.shared();
  T *w_packed, *bias_packed;
  pack_forward(l, w_hwio, bias, base, &w_packed, &bias_packed);

  const auto forward_rows = direct_conv_kernels<T>().forward_rows;
  parallel_chunks(0, s.batch * s.out_h, row_grain(s), chunk_count(s, threads),
                  [&](int64_t chunk, int64_t r0, int64_t r1) {
    T* pad = reinterpret_cast<T*>(slots + chunk * l.slot());
    forward_rows(plan, x_nhwc, w_packed, bias_packed, act, y_nhwc, 0, r0, r1, pad);
  });
}

template <typename T>
bool conv2d_direct_fuses_max_pool(const Conv2dShape& s) {
  return use_direct_conv<T>(s) && s.out_h >= 2 && s.out_w >= 2 && max_pool2d_is_2x2<T>(pool_of_two_rows(s));
}

template <typename T>
size_t conv2d_direct_relu_max_pool_workspace_bytes(const Conv2dShape& s, int threads) {
  const Layout l = pooled_layout<T>(s);
  return l.shared() + l.slot() * static_cast<size_t>(chunk_count(s, threads));
}

template <typename T>
void conv2d_direct_relu_max_pool(const Conv2dShape& s, const T* x_nhwc, const T* w_hwio, const T* bias, T* y_pool_nhwc,
                                 int64_t* argmax, void* workspace, size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  if (!conv2d_direct_fuses_max_pool<T>(s)) {
    throw std::invalid_argument("conv2d_relu_max_pool2d: this shape has no fused kernel");
  }
  require_workspace(workspace_bytes, conv2d_direct_relu_max_pool_workspace_bytes<T>(s, threads),
                    "conv2d_relu_max_pool2d");
  Layout l = pooled_layout<T>(s);
  const DirectConvPlan& plan = l.plan;
  auto* base = static_cast<unsigned char*>(workspace);
  unsigned char* slots = base + l.shared();
  T *w_packed, *bias_packed;
  pack_forward(l, w_hwio, bias, base, &w_packed, &bias_packed);

  // Pooled rows (batch x_nhwc out_h / 2) across threads; each computes its two
  // output rows into the chunk's scratch (L1-sized) and pools them from there,
  // so the full-size output is never written.  Chunk count and grain as the
  // plain forward's, in pooled rows.
  const Pool2dShape ps = pool_of_two_rows(s);
  const int64_t pooled_h = s.out_h / 2, pooled_row = ps.out_width * s.out_c;
  const auto forward_rows = direct_conv_kernels<T>().forward_rows;
  parallel_chunks(0, s.batch * pooled_h, std::max<int64_t>(1, row_grain(s) / 2), chunk_count(s, threads),
                  [&](int64_t chunk, int64_t p0, int64_t p1) {
    unsigned char* slot = slots + chunk * l.slot();
    T* pad = reinterpret_cast<T*>(slot);
    T* rows = reinterpret_cast<T*>(slot + l.pad_bytes + l.partial_bytes);
    for (int64_t pr = p0; pr < p1; ++pr) {
      const int64_t n = pr / pooled_h, ph = pr % pooled_h;
      const int64_t r0 = n * s.out_h + 2 * ph;  // the first of its two output rows
      forward_rows(plan, x_nhwc, w_packed, bias_packed, Activation::relu, rows, r0, r0, r0 + 2, pad);
      max_pool2d_2x2_rows<T>(ps, rows, y_pool_nhwc + pr * pooled_row, argmax + pr * pooled_row,
                             r0 * s.out_w * s.out_c, 0, 1);
    }
  });
}

template <typename T>
void conv2d_direct_backward_weights(const Conv2dShape& s, const T* dy_nhwc, const T* x_nhwc, T* dw_hwio, void* workspace,
                                    size_t workspace_bytes, int threads) {
  check_conv2d_shape(s);
  require_workspace(workspace_bytes, conv2d_direct_backward_weights_workspace_bytes<T>(s, threads),
                    "conv2d_backward_weights");
  Layout l = layout<T>(s, true);
  DirectConvPlan& plan = l.plan;
  auto* base = static_cast<unsigned char*>(workspace);
  auto* offsets = reinterpret_cast<int64_t*>(base);
  unsigned char* slots = base + l.shared();
  fill_tap_offsets(plan, offsets);
  plan.tap_offsets = offsets;

  const int64_t dw_size = plan.taps * s.out_c;
  const int64_t chunks = chunk_count(s, threads);
  auto partial = [&](int64_t chunk) { return reinterpret_cast<T*>(slots + chunk * l.slot() + l.pad_bytes); };
  for (int64_t c = 0; c < chunks; ++c) std::fill(partial(c), partial(c) + dw_size, T(0));
  const auto backward_weights_rows = direct_conv_kernels<T>().backward_weights_rows;
  const int64_t used = parallel_chunks(0, s.batch * s.out_h, row_grain(s), chunks,
                                       [&](int64_t chunk, int64_t r0, int64_t r1) {
    T* pad = reinterpret_cast<T*>(slots + chunk * l.slot());
    T* sum = partial(chunk);
    backward_weights_rows(plan, dy_nhwc, x_nhwc, r0, r1, pad, sum);
  });
  // The partials of the chunks that ran (all zeroed above), in chunk order.
  sum_partials(dw_hwio, dw_size, used, partial);
}

#define FASTNN_INSTANTIATE(T)                                                                                  \
  template size_t conv2d_direct_forward_workspace_bytes<T>(const Conv2dShape&, int);                           \
  template size_t conv2d_direct_backward_weights_workspace_bytes<T>(const Conv2dShape&, int);                  \
  template void conv2d_direct_forward<T>(const Conv2dShape&, const T*, const T*, const T*, Activation, T*,     \
                                         void*, size_t, int);                                                  \
  template void conv2d_direct_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, void*, size_t, \
                                                  int);                                                        \
  template bool conv2d_direct_fuses_max_pool<T>(const Conv2dShape&);                                           \
  template size_t conv2d_direct_relu_max_pool_workspace_bytes<T>(const Conv2dShape&, int);                     \
  template void conv2d_direct_relu_max_pool<T>(const Conv2dShape&, const T*, const T*, const T*, T*, int64_t*, \
                                               void*, size_t, int);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn::cpu
