// Elementwise chunk kernels compiled for the avx512 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx512
#include "cpu/elementwise_kernels.h"
