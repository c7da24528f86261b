// Activation entry points: split the buffer across threads in cache-sized
// chunks and run the kernel compiled for the selected ISA on each chunk.
#include "cpu/activations.h"

#include "common/parallel.h"
#include "cpu/activations_table.h"
#include "cpu/dispatch.h"

namespace fastnn::cpu {

// The selected ISA's activation kernels, resolved once.
template <typename T>
static const ActivationKernels<T>& activation_kernels() {
  return resolve_kernel_table(&portable::activation_kernel_table<T>, &avx2::activation_kernel_table<T>,
                              &avx512::activation_kernel_table<T>);
}

// Below ~32K elements a fork/join costs more than the work it splits.
constexpr int64_t kGrain = 1 << 15;

template <typename T>
void activation_forward(Activation act, const T* x, T* y, int64_t n) {
  const auto forward = activation_kernels<T>().forward;
  parallel_for(0, n, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    forward(act, x + lo, y + lo, hi - lo);
  });
}

template <typename T>
void activation_backward(Activation act, const T* dy, const T* y, T* dx, int64_t n) {
  const auto backward = activation_kernels<T>().backward;
  parallel_for(0, n, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    backward(act, dy + lo, y + lo, dx + lo, hi - lo);
  });
}

template void activation_forward<float>(Activation, const float*, float*, int64_t);
template void activation_forward<double>(Activation, const double*, double*, int64_t);
template void activation_backward<float>(Activation, const float*, const float*, float*, int64_t);
template void activation_backward<double>(Activation, const double*, const double*, double*, int64_t);

}  // namespace fastnn::cpu
