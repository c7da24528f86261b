// Elementwise chunk kernels compiled for the avx512 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx512
#include "cpu/elementwise_kernels.h"

namespace fastnn::cpu::avx512 {
FASTNN_INSTANTIATE_ELEMENTWISE(float)
FASTNN_INSTANTIATE_ELEMENTWISE(double)
}  // namespace fastnn::cpu::avx512
