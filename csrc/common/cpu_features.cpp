#include "common/cpu_features.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fastnn {

Isa detected_isa() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    return Isa::avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::portable;
}

static Isa parse_isa_override(Isa best) {
  const char* env = std::getenv("FASTNN_ISA");
  if (env == nullptr || *env == '\0') return best;
  Isa wanted;
  if (std::strcmp(env, "portable") == 0) wanted = Isa::portable;
  else if (std::strcmp(env, "avx2") == 0) wanted = Isa::avx2;
  else if (std::strcmp(env, "avx512") == 0) wanted = Isa::avx512;
  else throw std::invalid_argument(std::string("FASTNN_ISA must be portable, avx2 or avx512, got '") + env + "'");
  if (static_cast<int>(wanted) > static_cast<int>(best)) {
    throw std::invalid_argument(std::string("FASTNN_ISA=") + env + " is not supported by this CPU (best: " +
                                isa_name(best) + ")");
  }
  return wanted;
}

Isa selected_isa() {
  static const Isa isa = parse_isa_override(detected_isa());
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace fastnn
