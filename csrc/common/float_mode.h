// Flush-to-zero for fastnn's CPU kernels.
//
// Subnormal floats cost a microcode assist per operation on x86 (about 100
// cycles).  Training can drive weights into that range (a dead filter under
// weight decay and Adam shrinks geometrically), and a convolution whose
// accumulators go subnormal then runs 20-50x slower.  With flushing on, every
// thread that runs a kernel sets MXCSR's FTZ (subnormal results become zero)
// and DAZ (subnormal inputs read as zero) for the kernel's duration and
// restores its own mode afterwards, so NumPy and everything else on those
// threads keep IEEE arithmetic.  Off by default: the ops then match NumPy
// bit for bit on subnormal inputs; fastnn.nn's Learner turns it on.
#pragma once

namespace fastnn {

bool flush_denormals();
void set_flush_denormals(bool on);

// Applies the current setting to the calling thread for its lifetime.
class FloatModeGuard {
 public:
  FloatModeGuard();
  ~FloatModeGuard();
  FloatModeGuard(const FloatModeGuard&) = delete;
  FloatModeGuard& operator=(const FloatModeGuard&) = delete;

 private:
  unsigned saved_;
  bool active_;
};

}  // namespace fastnn
