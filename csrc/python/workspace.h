// A per-Python-thread scratch buffer for kernels that need a workspace (GEMM
// packing, im2col blocks).  It only grows, so repeated calls of the same shape
// pay no allocation, and since it is thread_local, concurrent calls with the
// GIL released never share one.  Kernels receive it as pointer + size and
// keep nothing past the call.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace fastnn::python {

class Workspace {
 public:
  void* get(size_t bytes) {
    if (bytes > size_) {
      constexpr size_t kAlign = 4096;
      const size_t rounded = (bytes + bytes / 4 + kAlign - 1) / kAlign * kAlign;
      buffer_.reset();  // free first: the new size may not fit beside the old one
      size_ = 0;
      void* p = std::aligned_alloc(kAlign, rounded);
      if (p == nullptr) throw std::bad_alloc();
      buffer_.reset(p);
      size_ = rounded;
    }
    return buffer_.get();
  }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> buffer_;
  size_t size_ = 0;
};

inline Workspace& thread_workspace() {
  thread_local Workspace ws;
  return ws;
}

}  // namespace fastnn::python
