// Sequence-op kernels compiled for the avx512 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx512
#include "cpu/seq_kernels.h"
