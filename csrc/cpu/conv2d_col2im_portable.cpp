// col2im compiled for the portable instruction set (see CMakeLists.txt).
#define FASTNN_ISA_NAMESPACE portable
#include "cpu/conv2d_col2im_kernels.h"
