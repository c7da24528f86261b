// Pooling kernels compiled for the portable instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE portable
#include "cpu/pool_kernels.h"
