// Per-family kernel tables, resolved once per process.
//
// An op family with kernels compiled once per ISA (files *_portable.cpp,
// *_avx2.cpp, *_avx512.cpp) describes them in a table: a struct of function
// pointers, as the GEMM's KernelSet does.  Each ISA's translation unit defines
// the family's table factory in its namespace (portable::, avx2::, avx512::);
// the family's entry points (baseline ISA) keep one static table, picked here
// the first time it is needed, and call through it: one pointer call per
// kernel call, no per-call switch.  selected_isa() is fixed for the process
// (FASTNN_ISA is read once, see common/cpu_features.h), so the table never
// changes after it is resolved.
#pragma once

#include "common/cpu_features.h"

namespace fastnn::cpu {

// The selected ISA's table, built by its factory once and kept.  The static
// is keyed by the table type, so each family (and dtype) has a type of its own.
template <typename Table>
const Table& resolve_kernel_table(Table (*portable)(), Table (*avx2)(), Table (*avx512)()) {
  static const Table table = [&] {
    switch (selected_isa()) {
      case Isa::avx512: return avx512();
      case Isa::avx2: return avx2();
      default: return portable();
    }
  }();
  return table;
}

}  // namespace fastnn::cpu
