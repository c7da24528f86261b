// Elementwise chunk kernels compiled for the avx2 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx2
#include "cpu/elementwise_kernels.h"
