// Entry points of elementwise.h: split each op into chunks across threads and run
// the chunk kernel of the selected ISA.  Reductions go through
// parallel_reduce_sum, whose fixed chunk order keeps results deterministic for a
// given thread count.
#include "cpu/elementwise.h"

#include <algorithm>
#include <cstring>

#include "common/parallel.h"
#include "cpu/dispatch.h"
#include "cpu/elementwise_table.h"

namespace fastnn::cpu {

// The selected ISA's chunk kernels, resolved once.
template <typename T>
static const ElementwiseKernels<T>& elementwise_kernels() {
  return resolve_kernel_table(&portable::elementwise_kernel_table<T>, &avx2::elementwise_kernel_table<T>,
                              &avx512::elementwise_kernel_table<T>);
}

// Elementwise streams split at ~32K elements; row-wise ops at ~32K values.
constexpr int64_t kGrain = 1 << 15;

static int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }

// Each chunk's partial sums are separated by at least one cache line whatever
// the workspace's alignment: the threads update them on every row, and sharing
// a line between two threads' slices would ping-pong it between the cores.
int64_t bias_backward_stride(int64_t channels) { return (channels + 7) / 8 * 8 + 8; }

template <typename T>
void bias_backward_rows(const T* dy, int64_t rows, int64_t channels, double* workspace, int64_t team,
                        T* db) {
  const auto kernel = elementwise_kernels<T>().column_sum;
  // Each chunk of rows sums into its own slice of the workspace (sized by the
  // caller for `team` chunks); the slices are then added in chunk order
  // (deterministic for a given team size).
  const int64_t chunks = std::max<int64_t>(1, chunk_count(rows, row_grain(channels), team));
  const int64_t stride = bias_backward_stride(channels);
  std::fill(workspace, workspace + chunks * stride, 0.0);
  parallel_for(0, chunks, 1, team, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
      kernel(dy + r0 * channels, r1 - r0, channels, workspace + c * stride);
    }
  });
  for (int64_t ch = 0; ch < channels; ++ch) {
    double sum = 0.0;
    for (int64_t c = 0; c < chunks; ++c) sum += workspace[c * stride + ch];
    db[ch] = static_cast<T>(sum);
  }
}

template <typename T>
void bias_backward_planes(const T* dy, int64_t batch, int64_t channels, int64_t plane, T* db) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(batch * plane, 1));
  parallel_for(0, channels, grain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double sum = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        const T* p = dy + (n * channels + c) * plane;
        for (int64_t i = 0; i < plane; ++i) sum += static_cast<double>(p[i]);
      }
      db[c] = static_cast<T>(sum);
    }
  });
}

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t cols, bool log) {
  const auto kernel = elementwise_kernels<T>().softmax;
  parallel_for(0, rows, row_grain(cols), get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(x + lo * cols, y + lo * cols, hi - lo, cols, log);
  });
}

template <typename T>
double softmax_cross_entropy(const T* logits, const int64_t* labels, const T* targets, T* probs, int64_t rows,
                             int64_t cols) {
  const auto kernel = elementwise_kernels<T>().softmax_cross_entropy;
  const double total = parallel_reduce_sum(0, rows, row_grain(cols), get_num_threads(), [&](int64_t lo, int64_t hi) {
    return kernel(logits + lo * cols, labels ? labels + lo : nullptr, targets ? targets + lo * cols : nullptr,
                  probs + lo * cols, hi - lo, cols);
  });
  return total / static_cast<double>(rows);
}

template <typename T>
void softmax_cross_entropy_backward(double dloss, const T* probs, const int64_t* labels, const T* targets,
                                    T* dlogits, int64_t rows, int64_t cols) {
  const auto kernel = elementwise_kernels<T>().softmax_cross_entropy_backward;
  const T scale = static_cast<T>(dloss / static_cast<double>(rows));
  parallel_for(0, rows, row_grain(cols), get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(scale, probs + lo * cols, labels ? labels + lo : nullptr, targets ? targets + lo * cols : nullptr,
           dlogits + lo * cols, hi - lo, cols);
  });
}

template <typename T>
double mse_loss(const T* prediction, const T* target, T* grad, int64_t size, int64_t batch) {
  const auto kernel = elementwise_kernels<T>().mse;
  const T two_over_batch = static_cast<T>(2.0 / static_cast<double>(batch));
  const double total = parallel_reduce_sum(0, size, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    return kernel(prediction + lo, target + lo, grad + lo, hi - lo, two_over_batch);
  });
  return total / static_cast<double>(batch);
}

template <typename T>
void dropout(const T* x, T* y, uint8_t* mask, int64_t size, uint64_t seed, uint32_t threshold, double scale) {
  const auto kernel = elementwise_kernels<T>().dropout;
  const uint64_t seed_mixed = seed * 0x9E3779B97F4A7C15ull;
  parallel_for(0, size, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(x + lo, y + lo, mask + lo, hi - lo, lo, seed_mixed, threshold, static_cast<T>(scale));
  });
}

template <typename T>
void dropout_backward(const T* dy, const uint8_t* mask, T* dx, int64_t size, double scale) {
  const auto kernel = elementwise_kernels<T>().dropout_backward;
  parallel_for(0, size, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(dy + lo, mask + lo, dx + lo, hi - lo, static_cast<T>(scale));
  });
}

template <typename T>
void sgd_update(T* param, T* grad, T* velocity, int64_t size, double lr, double momentum, double weight_decay,
                bool nesterov) {
  const auto kernel = elementwise_kernels<T>().sgd;
  parallel_for(0, size, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(param + lo, grad + lo, velocity ? velocity + lo : nullptr, hi - lo, static_cast<T>(lr),
           static_cast<T>(momentum), static_cast<T>(weight_decay), nesterov);
  });
}

template <typename T>
void adam_update(T* param, T* grad, T* m, T* v, int64_t size, double lr, double beta1, double beta2, double eps,
                 double weight_decay, double m_scale, double v_scale, double grad_scale, double param_decay,
                 T* average, double average_rate) {
  const auto kernel = elementwise_kernels<T>().adam;
  const AdamArgs<T> args{static_cast<T>(lr),          static_cast<T>(beta1),       static_cast<T>(beta2),
                         static_cast<T>(eps),         static_cast<T>(weight_decay), static_cast<T>(m_scale),
                         static_cast<T>(v_scale),     static_cast<T>(grad_scale),  static_cast<T>(param_decay),
                         static_cast<T>(average_rate)};
  parallel_for(0, size, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    kernel(param + lo, grad + lo, m + lo, v + lo, hi - lo, args, average ? average + lo : nullptr);
  });
}

#define FASTNN_INSTANTIATE(T)                                                                                  \
  template void bias_backward_rows<T>(const T*, int64_t, int64_t, double*, int64_t, T*);                                \
  template void bias_backward_planes<T>(const T*, int64_t, int64_t, int64_t, T*);                              \
  template void softmax_rows<T>(const T*, T*, int64_t, int64_t, bool);                                         \
  template double softmax_cross_entropy<T>(const T*, const int64_t*, const T*, T*, int64_t, int64_t);          \
  template void softmax_cross_entropy_backward<T>(double, const T*, const int64_t*, const T*, T*, int64_t,     \
                                                  int64_t);                                                    \
  template double mse_loss<T>(const T*, const T*, T*, int64_t, int64_t);                                       \
  template void dropout<T>(const T*, T*, uint8_t*, int64_t, uint64_t, uint32_t, double);                       \
  template void dropout_backward<T>(const T*, const uint8_t*, T*, int64_t, double);                            \
  template void sgd_update<T>(T*, T*, T*, int64_t, double, double, double, bool);                              \
  template void adam_update<T>(T*, T*, T*, T*, int64_t, double, double, double, double, double, double, double, \
                                double, double, T*, double);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)

}  // namespace fastnn::cpu
