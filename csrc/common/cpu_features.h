// Which instruction set the CPU kernels run with, chosen once per process.
//
// Kernels for each ISA live in their own translation unit compiled with that
// ISA's flags (files named *_avx512.cpp / *_avx2.cpp); the rest of the library
// is compiled for baseline x86-64, so one wheel runs on any x86-64 CPU.
// FASTNN_ISA=portable|avx2|avx512 forces a lower level (tests use it to run
// every path on one machine); asking for more than the CPU has is an error.
#pragma once

namespace fastnn {

enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

Isa detected_isa();   // the best level this CPU supports
Isa selected_isa();   // detected_isa(), lowered by FASTNN_ISA; cached
const char* isa_name(Isa isa);

}  // namespace fastnn
