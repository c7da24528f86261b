// Sequence-op kernels compiled for the portable instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE portable
#include "cpu/seq_kernels.h"
