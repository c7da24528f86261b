// Winograd transforms compiled for the avx512 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx512
#include "cpu/conv2d_winograd_kernels.h"
