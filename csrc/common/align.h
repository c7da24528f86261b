// Workspace carving: every buffer a kernel cuts out of its workspace starts on
// a 64-byte boundary (a cache line, and a whole AVX-512 vector).
#pragma once

#include <cstddef>

namespace fastnn {

constexpr size_t kWorkspaceAlign = 64;

// n rounded up to a multiple of kWorkspaceAlign.
constexpr size_t align_up(size_t n) { return (n + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

}  // namespace fastnn
