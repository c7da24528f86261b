// Pooling kernels compiled for the avx2 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx2
#include "cpu/pool_kernels.h"
