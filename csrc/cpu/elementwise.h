// One-pass elementwise and row-wise kernels: bias gradient, softmax family and
// losses, dropout, optimizer updates.  Every function reads and writes each
// element once, with no temporaries; reductions add partial sums in a fixed
// order, so results are deterministic for a given thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastnn::cpu {

// db[c] = sum over rows of dy[r, c] (channels-last, any leading shape).
// workspace: team * bias_backward_stride(channels) doubles, for a team of
// `team` threads (the caller reads the thread count once and sizes both).
int64_t bias_backward_stride(int64_t channels);
template <typename T>
void bias_backward_rows(const T* dy, int64_t rows, int64_t channels, double* workspace, int64_t team,
                        T* db);
// db[c] = sum over n and the plane of dy[n, c, plane] (NCHW).
template <typename T>
void bias_backward_planes(const T* dy, int64_t batch, int64_t channels, int64_t plane, T* db);

// Row-wise softmax (or log-softmax) of a rows x cols matrix.
template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t cols, bool log);

// Mean cross-entropy of softmax(logits) against class indices (labels) or float
// targets (exactly one of the two is non-null); writes probs, returns the loss.
template <typename T>
double softmax_cross_entropy(const T* logits, const int64_t* labels, const T* targets, T* probs,
                             int64_t rows, int64_t cols);
template <typename T>
void softmax_cross_entropy_backward(double dloss, const T* probs, const int64_t* labels,
                                    const T* targets, T* dlogits, int64_t rows, int64_t cols);

// loss = sum(diff^2) / batch, grad = 2 * diff / batch.
template <typename T>
double mse_loss(const T* prediction, const T* target, T* grad, int64_t size, int64_t batch);

// Inverted dropout with the counter-based SplitMix64 mask (see the reference
// backend): element i is kept when (hash(seed * golden + i) >> 40) < threshold.
template <typename T>
void dropout(const T* x, T* y, uint8_t* mask, int64_t size, uint64_t seed, uint32_t threshold,
             double scale);
template <typename T>
void dropout_backward(const T* dy, const uint8_t* mask, T* dx, int64_t size, double scale);

// In-place optimizer steps over one parameter; both leave grad zeroed.
template <typename T>
void sgd_update(T* param, T* grad, T* velocity, int64_t size, double lr, double momentum,
                double weight_decay, bool nesterov);
// Adam: g = grad_scale * grad + weight_decay * param; m, v their moving moments; param
// -= lr * m * m_scale / (sqrt(v * v_scale) + eps), then param -= param_decay * param; with
// average (else nullptr), average -= average_rate * (average - param) on the new param.
template <typename T>
void adam_update(T* param, T* grad, T* m, T* v, int64_t size, double lr, double beta1, double beta2,
                 double eps, double weight_decay, double m_scale, double v_scale, double grad_scale = 1.0,
                 double param_decay = 0.0, T* average = nullptr, double average_rate = 0.0);

}  // namespace fastnn::cpu
