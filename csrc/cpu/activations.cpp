// Activation entry points: split the buffer across threads in cache-sized
// chunks and run the kernel compiled for the selected ISA on each chunk.
#include "cpu/activations.h"

#include "common/cpu_features.h"
#include "common/parallel.h"

namespace fastnn::cpu {

#define FASTNN_DECLARE_ACTIVATIONS(ns)                                                         \
  namespace ns {                                                                               \
  template <typename T> void activation_forward(Activation, const T*, T*, int64_t);            \
  template <typename T> void activation_backward(Activation, const T*, const T*, T*, int64_t); \
  }
FASTNN_DECLARE_ACTIVATIONS(portable)
FASTNN_DECLARE_ACTIVATIONS(avx2)
FASTNN_DECLARE_ACTIVATIONS(avx512)
#undef FASTNN_DECLARE_ACTIVATIONS

// Below ~32K elements a fork/join costs more than the work it splits.
constexpr int64_t kGrain = 1 << 15;

template <typename T>
void activation_forward(Activation act, const T* x, T* y, int64_t n) {
  const Isa isa = selected_isa();
  parallel_for(0, n, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    switch (isa) {
      case Isa::avx512: avx512::activation_forward(act, x + lo, y + lo, hi - lo); break;
      case Isa::avx2: avx2::activation_forward(act, x + lo, y + lo, hi - lo); break;
      default: portable::activation_forward(act, x + lo, y + lo, hi - lo); break;
    }
  });
}

template <typename T>
void activation_backward(Activation act, const T* dy, const T* y, T* dx, int64_t n) {
  const Isa isa = selected_isa();
  parallel_for(0, n, kGrain, get_num_threads(), [&](int64_t lo, int64_t hi) {
    switch (isa) {
      case Isa::avx512: avx512::activation_backward(act, dy + lo, y + lo, dx + lo, hi - lo); break;
      case Isa::avx2: avx2::activation_backward(act, dy + lo, y + lo, dx + lo, hi - lo); break;
      default: portable::activation_backward(act, dy + lo, y + lo, dx + lo, hi - lo); break;
    }
  });
}

template void activation_forward<float>(Activation, const float*, float*, int64_t);
template void activation_forward<double>(Activation, const double*, double*, int64_t);
template void activation_backward<float>(Activation, const float*, const float*, float*, int64_t);
template void activation_backward<double>(Activation, const double*, const double*, double*, int64_t);

}  // namespace fastnn::cpu
