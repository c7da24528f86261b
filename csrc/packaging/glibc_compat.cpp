// Linked into the modules only with FASTNN_STATIC_RUNTIME (release wheels).
//
// A statically linked libstdc++ from GCC 12 built against glibc >= 2.36 carries
// std::random_device, which calls arc4random (GLIBC_2.36); it comes in with the exception
// classes whatever the code uses, and would alone raise the wheel's manylinux tag from 2.34
// (the floor set by libgomp and pthreads) to 2.36. This definition satisfies that
// reference inside the module, hidden, so the module no longer asks glibc for it. fastnn
// itself never uses std::random_device; the definition is still a correct one (32 random
// bits from the kernel, through getrandom, GLIBC_2.25).
#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

extern "C" __attribute__((visibility("hidden"))) std::uint32_t arc4random() {
  std::uint32_t value = 0;
  auto* bytes = reinterpret_cast<unsigned char*>(&value);
  std::size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = getrandom(bytes + got, sizeof value - got, 0);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      std::abort();  // as glibc's arc4random does when no entropy can be read
    }
  }
  return value;
}
