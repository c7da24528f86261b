// Per-Python-thread scratch buffers for kernels that need a workspace (GEMM
// packing, im2col blocks, pointer tables, per-thread partial sums).  A buffer
// is kept between calls, so repeated calls of the same shape pay no
// allocation, and since it is thread_local, concurrent calls with the GIL
// released never share one.  Kernels receive it as pointer + size and keep
// nothing past the call.
//
// What is kept is bounded and can be freed:
//  * a buffer larger than kRetainBytes is freed when the call that needed it
//    ends (the kernels bound their own workspaces far below that; this is the
//    backstop for the few that scale with a weight tensor);
//  * release_all_workspaces() (fastnn.release_memory()) frees every thread's
//    buffer: at once where no call is using it, else when that call ends;
//  * workspace_bytes_held() reports what all threads hold.
//
// Every Workspace registers itself in one process-wide list (a mutex-guarded
// set) and leaves it when its thread exits.  A call holds its buffer through a
// Lease, which marks it in use: release_all_workspaces() never frees a buffer
// under a running kernel.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_set>

namespace fastnn::python {

// Buffers above this size are not kept past the call that needed them.
constexpr size_t kRetainBytes = size_t(64) << 20;

class Workspace;

namespace workspace_detail {

struct Registry {
  std::mutex mutex;
  std::unordered_set<Workspace*> members;
};

inline Registry& registry() {
  static Registry r;  // outlives every thread_local Workspace of the main thread
  return r;
}

}  // namespace workspace_detail

class Workspace {
 public:
  // The buffer of one call: valid until the Lease is destroyed.
  class Lease {
   public:
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { owner_->end_use(); }
    void* data() const { return data_; }

   private:
    friend class Workspace;
    Lease(Workspace* owner, void* data) : owner_(owner), data_(data) {}
    Workspace* owner_;
    void* data_;
  };

  Workspace() {
    auto& r = workspace_detail::registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.members.insert(this);
  }
  ~Workspace() {
    auto& r = workspace_detail::registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.members.erase(this);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // At least `bytes` bytes, 4096-aligned (nullptr for 0), for the caller's
  // thread until the Lease ends.  One lease at a time per workspace (calls on
  // one Python thread are sequential).
  Lease acquire(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (in_use_) throw std::logic_error("fastnn: a thread's workspace was acquired twice in one call");
    if (bytes > size_) {
      constexpr size_t kAlign = 4096;
      if (bytes > (SIZE_MAX - kAlign) / 5 * 4) throw std::bad_alloc();
      // A quarter of headroom for the next, slightly larger call, but never past
      // kRetainBytes for a request below it: a buffer over that is freed after every
      // call, and its pages are faulted in again by the next one.
      const size_t grown = std::max(bytes, std::min(bytes + bytes / 4, kRetainBytes));
      const size_t rounded = (grown + kAlign - 1) / kAlign * kAlign;
      free_locked();  // free first: the new size may not fit beside the old one
      void* p = std::aligned_alloc(kAlign, rounded);
      if (p == nullptr) throw std::bad_alloc();
      buffer_.reset(p);
      size_ = rounded;
    }
    in_use_ = true;
    return Lease(this, bytes == 0 ? nullptr : buffer_.get());
  }

  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return size_;
  }

  // Frees the buffer now, or when the running call ends.
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (in_use_) {
      release_pending_ = true;
    } else {
      free_locked();
    }
  }

 private:
  void end_use() {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_ = false;
    if (release_pending_ || size_ > kRetainBytes) free_locked();
  }
  void free_locked() {
    buffer_.reset();
    size_ = 0;
    release_pending_ = false;
  }

  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::mutex mutex_;
  std::unique_ptr<void, Free> buffer_;
  size_t size_ = 0;
  bool in_use_ = false;
  bool release_pending_ = false;
};

inline Workspace& thread_workspace() {
  thread_local Workspace ws;
  return ws;
}

// Bytes held by every thread's workspace.
inline size_t workspace_bytes_held() {
  auto& r = workspace_detail::registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  size_t total = 0;
  for (Workspace* ws : r.members) total += ws->size();
  return total;
}

// Frees every thread's workspace (those in use when their call ends).
inline void release_all_workspaces() {
  auto& r = workspace_detail::registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (Workspace* ws : r.members) ws->release();
}

}  // namespace fastnn::python
