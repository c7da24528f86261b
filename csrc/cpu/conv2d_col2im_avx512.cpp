// col2im compiled for the avx512 instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE avx512
#include "cpu/conv2d_col2im_kernels.h"
