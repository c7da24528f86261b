// The vector width of the including translation unit's ISA (the kernels' *_portable.cpp,
// _avx2.cpp and _avx512.cpp each define FASTNN_ISA_NAMESPACE and get their own copy).
//
// Kernels that keep blocks of values in GCC vector types size them by this: a 64-byte
// vector type is one register only with AVX-512.  On AVX2 and SSE2, GCC 12 lowers
// compares, blends and conversions of such a type through the stack, in 8- and 16-byte
// pieces on every step (measured: the AVX2 LRN, max-pool and Thinc reductions several
// times slower than the SSE2 ones), where plain arithmetic is split into registers.
#pragma once

#include <cstdint>

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including vector_width.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {

#if defined(__AVX512F__)
inline constexpr int64_t kVectorBytes = 64;
#elif defined(__AVX2__)
inline constexpr int64_t kVectorBytes = 32;
#else
inline constexpr int64_t kVectorBytes = 16;
#endif

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
