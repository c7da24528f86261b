// Pointwise activations and their backward passes on contiguous buffers.
// The backward of each takes the forward's output y (not its input), so a
// layer keeps one buffer alive between forward and backward.
#pragma once

#include <cstdint>

namespace fastnn::cpu {

enum class Activation : int { none = 0, relu = 1, sigmoid = 2, tanh = 3 };

template <typename T> void activation_forward(Activation act, const T* x, T* y, int64_t n);
template <typename T> void activation_backward(Activation act, const T* dy, const T* y, T* dx, int64_t n);

}  // namespace fastnn::cpu
