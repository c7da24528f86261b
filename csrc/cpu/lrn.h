// Local response normalisation across the contiguous (last) channel axis,
// TensorFlow semantics:
//   scale[c] = bias + alpha * sum(x[c']^2 for |c' - c| <= depth_radius)
//   y[c]     = x[c] * scale[c]^-beta
// and its backward
//   dx[c] = dy[c] * scale[c]^-beta
//           - 2 alpha beta x[c] * sum(dy[j] y[j] / scale[j] for |j - c| <= depth_radius).
// Arrays hold `pixels` rows of `channels` values (NHWC; NCHW is transposed by the caller).
#pragma once

#include <cstdint>

namespace fastnn::cpu {

// Pixels whose padded channel rows a task fills before it sums any window: a
// window's loads then read rows stored many cycles earlier, not the stores just
// issued (a load spanning two pending stores cannot be forwarded from them and
// waits for both to commit).
constexpr int64_t kLrnGroup = 8;

// Elements of workspace lrn_forward/lrn_backward want on a team of `team`
// threads (kLrnGroup padded channel rows per task); any size of at least one
// task's rows works (fewer tasks run).
template <typename T>
int64_t lrn_workspace_size(int64_t pixels, int64_t channels, int64_t depth_radius, int team);

template <typename T>
void lrn_forward(const T* x, T* y, T* scale, int64_t pixels, int64_t channels, int64_t depth_radius,
                 T bias, T alpha, T beta, T* workspace, int64_t workspace_size, int team);

template <typename T>
void lrn_backward(const T* dy, const T* x, const T* y, const T* scale, T* dx, int64_t pixels,
                  int64_t channels, int64_t depth_radius, T alpha, T beta, T* workspace,
                  int64_t workspace_size, int team);

}  // namespace fastnn::cpu
