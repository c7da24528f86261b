// Elementwise chunk kernels compiled for the portable instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE portable
#include "cpu/elementwise_kernels.h"
