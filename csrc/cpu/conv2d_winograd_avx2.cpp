// Winograd transforms compiled for the avx2 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx2
#include "cpu/conv2d_winograd_kernels.h"
