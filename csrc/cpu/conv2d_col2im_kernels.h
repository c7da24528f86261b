// col2im for conv2d backward-data, compiled once per ISA (conv2d_col2im_*.cpp)
// so the per-tap channel adds vectorise for the ISA in use; conv2d_im2col.cpp
// resolves the table once.
#pragma once

#include <cstdint>

#include "cpu/conv2d.h"
#include "cpu/conv2d_algorithms.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including conv2d_col2im_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

// Adds the patch gradients of output rows [row0, row0 + rows) back into dx.
template <typename T>
void col2im_add(const Conv2dShape& s, const T* cols, int64_t row0, int64_t rows, T* dx_nhwc) {
  const int64_t patch = s.kernel_h * s.kernel_w * s.in_c;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = row0 + r;
    const int64_t ow = row % s.out_w;
    const int64_t oh = (row / s.out_w) % s.out_h;
    const int64_t n = row / (s.out_w * s.out_h);
    const T* src = cols + r * patch;
    for (int64_t i = 0; i < s.kernel_h; ++i) {
      const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
      for (int64_t j = 0; j < s.kernel_w; ++j, src += s.in_c) {
        const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
        if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
        T* dst = dx_nhwc + ((n * s.in_h + ih) * s.in_w + iw) * s.in_c;
        for (int64_t c = 0; c < s.in_c; ++c) dst[c] += src[c];
      }
    }
  }
}

template <typename T>
Col2imKernels<T> col2im_kernel_table() {
  return {&col2im_add<T>};
}
template Col2imKernels<float> col2im_kernel_table<float>();
template Col2imKernels<double> col2im_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
