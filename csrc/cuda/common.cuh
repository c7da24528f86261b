// Device helpers shared by the op-family .cu files: launch sizing, the activation
// functions of the fused epilogues, and the explicit-instantiation macro.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

namespace fastnn::cuda {

constexpr int kBlock = 256;

// Blocks for a grid-stride loop over `size` elements: enough to fill any current GPU,
// capped so the grid stays within limits for any size (the loop covers the rest).
inline unsigned grid_for(int64_t size, int block = kBlock) {
  int64_t blocks = (size + block - 1) / block;
  if (blocks > (int64_t{1} << 16)) blocks = int64_t{1} << 16;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

#define FASTNN_GRID_STRIDE(i, size)                                                   \
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < (size);        \
       i += int64_t{gridDim.x} * blockDim.x)

template <typename T>
__device__ __forceinline__ bool is_nan(T v) { return v != v; }

// relu keeps NaN (as np.maximum); sigmoid exponentiates a non-positive number only, so
// neither branch overflows (the reference's formulation).
template <typename T>
__device__ __forceinline__ T activate(T v, int activation) {
  switch (activation) {
    case kRelu:
      return (v > T(0) || is_nan(v)) ? v : T(0);
    case kSigmoid: {
      T e = exp(-fabs(v));
      return (v >= T(0) ? T(1) : e) / (T(1) + e);
    }
    case kTanh:
      return tanh(v);
    default:
      return v;
  }
}

}  // namespace fastnn::cuda
