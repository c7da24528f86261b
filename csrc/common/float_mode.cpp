#include "common/float_mode.h"

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FASTNN_HAS_MXCSR 1
#endif

namespace fastnn {
namespace {

std::atomic<bool> g_flush{false};

#ifdef FASTNN_HAS_MXCSR
constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)
#endif

}  // namespace

bool flush_denormals() { return g_flush.load(std::memory_order_relaxed); }

void set_flush_denormals(bool on) { g_flush.store(on, std::memory_order_relaxed); }

FloatModeGuard::FloatModeGuard() : saved_(0), active_(false) {
#ifdef FASTNN_HAS_MXCSR
  if (flush_denormals()) {
    saved_ = _mm_getcsr();
    if ((saved_ & kFtzDaz) != kFtzDaz) {
      _mm_setcsr(saved_ | kFtzDaz);
      active_ = true;
    }
  }
#endif
}

FloatModeGuard::~FloatModeGuard() {
#ifdef FASTNN_HAS_MXCSR
  if (active_) _mm_setcsr(saved_);
#endif
}

}  // namespace fastnn
