// Winograd transforms compiled for the portable instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE portable
#include "cpu/conv2d_winograd_kernels.h"
