// The checks every binding makes before it hands memory to a kernel, written
// once.  User-facing validation (with the full messages) happens in
// fastnn/ops.py; these guard against any caller that bypasses it, so that a
// bad argument raises TypeError/ValueError naming the op and the argument and
// what was expected, and never reads or writes out of bounds:
//
//   dtype (TypeError), C-contiguity, alignment to the element type,
//   writeability of outputs, shapes (each array against the shape the inputs
//   and options imply), option ranges, and sizes computed without overflow.
//
// Outputs are checked before the kernel writes anything, so a refused call
// leaves every array as it was (fastnn.ops relies on that for its fast path).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "common/shapes.h"
#include "cpu/activations.h"

namespace fastnn::python {

namespace py = pybind11;

enum class DType { float32, float64 };

// "op: name " prefix of every message.
inline std::string arg_prefix(const char* op, const char* name) { return std::string(op) + ": " + name + " "; }

[[noreturn]] inline void fail_value(const char* op, const char* name, const std::string& what) {
  throw py::value_error(arg_prefix(op, name) + what);
}

[[noreturn]] inline void fail_type(const char* op, const char* name, const std::string& what) {
  throw py::type_error(arg_prefix(op, name) + what);
}

inline std::string dims_text(const int64_t* dims, size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (n == 1 ? ",)" : ")");
}

inline std::string shape_text(const py::array& a) {
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  return dims_text(dims.data(), dims.size());
}

inline std::string dtype_text(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

inline DType dtype_of(const py::array& a, const char* op, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::float32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::float64;
  fail_type(op, name, "must be float32 or float64, got " + dtype_text(a));
}

template <typename T>
const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else if constexpr (std::is_same_v<T, int64_t>) return "int64";
  else return "bool";
}

// The memory checks of one array a kernel reads as T: dtype, C-contiguity and
// alignment to T.
template <typename T>
void require_memory(const py::array& a, const char* op, const char* name) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    fail_type(op, name, std::string("must be ") + dtype_name<T>() + ", got " + dtype_text(a));
  }
  if (!(a.flags() & py::array::c_style)) fail_value(op, name, "must be C-contiguous");
  // (An empty array has no element to misread; NumPy calls it aligned.)
  if (a.size() > 0 && reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0) {
    fail_value(op, name, "must be aligned to its " + std::to_string(alignof(T)) + "-byte elements");
  }
}

// An array the kernel reads: checked, and its data as T.
template <typename T>
const T* input(const py::array& a, const char* op, const char* name) {
  require_memory<T>(a, op, name);
  return static_cast<const T*>(a.data());
}

// An array the kernel writes: checked, writeable, and its data as T.
template <typename T>
T* output(py::array& a, const char* op, const char* name) {
  require_memory<T>(a, op, name);
  if (!a.writeable()) fail_value(op, name, "must be writeable");
  return static_cast<T*>(a.mutable_data());
}

// An output that shares memory with an input would be read after it is overwritten (only
// the element-wise ops may work in place, and fastnn.ops passes them exactly aliased arrays):
// refuse overlap.  Both arrays are C-contiguous by then, so their byte ranges say exactly
// whether they overlap.
inline void require_disjoint(const py::array& out, const py::array& in, const char* op, const char* name) {
  const auto* o = static_cast<const char*>(out.data());
  const auto* i = static_cast<const char*>(in.data());
  if (out.nbytes() > 0 && in.nbytes() > 0 && o < i + in.nbytes() && i < o + out.nbytes()) {
    throw py::value_error(std::string(op) + ": out shares memory with " + name);
  }
}

inline void require_ndim(const py::array& a, py::ssize_t ndim, const char* op, const char* name) {
  if (a.ndim() != ndim) {
    fail_value(op, name, "must be " + std::to_string(ndim) + "-D, got shape " + shape_text(a));
  }
}

inline void require_shape(const py::array& a, const std::vector<int64_t>& shape, const char* op, const char* name) {
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(static_cast<py::ssize_t>(i)) == shape[i];
  if (!same) fail_value(op, name, "must have shape " + dims_text(shape.data(), shape.size()) + ", got " + shape_text(a));
}

inline std::vector<int64_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// b has a's shape (arrays of one elementwise op).
inline void require_same_shape(const py::array& a, const py::array& b, const char* op, const char* name_b) {
  require_shape(b, shape_of(a), op, name_b);
}

// An option that must lie in [lo, hi].
inline void require_range(int64_t v, int64_t lo, int64_t hi, const char* op, const char* name) {
  if (v < lo || v > hi) {
    fail_value(op, name, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                             std::to_string(v));
  }
}

// Sizes and options are capped here: every index a kernel computes from them
// (sums and products of at most a few such values) then fits in int64.
constexpr int64_t kMaxOption = int64_t(1) << 40;

// The options of a pooling window (std::pair of kernel, stride and padding, rows then
// columns): kernel >= 1, stride >= 1 and 0 <= padding < kernel, so every window of an
// image with rows and columns holds a real pixel.
template <typename Pair>
void require_pool_options(const Pair& kernel, const Pair& stride, const Pair& padding, const char* op) {
  require_range(kernel.first, 1, kMaxOption, op, "kernel");
  require_range(kernel.second, 1, kMaxOption, op, "kernel");
  require_range(stride.first, 1, kMaxOption, op, "stride");
  require_range(stride.second, 1, kMaxOption, op, "stride");
  require_range(padding.first, 0, kernel.first - 1, op, "padding");
  require_range(padding.second, 0, kernel.second - 1, op, "padding");
}

// checked_add, checked_mul and window_output_size (the output size of a convolution or
// pooling axis, recomputed from the inputs) are in common/shapes.h, shared with the kernels.

// An optional array argument (None or an array the kernel reads as T, of this
// shape): its data, or nullptr for None.
template <typename T>
const T* optional_input(const py::object& a, const std::vector<int64_t>& shape, const char* op, const char* name) {
  if (a.is_none()) return nullptr;
  if (!py::isinstance<py::array>(a)) fail_type(op, name, "must be a NumPy array or None");
  const auto arr = py::reinterpret_borrow<py::array>(a);
  require_shape(arr, shape, op, name);
  return input<T>(arr, op, name);
}

// An optional array a kernel writes (None, or a writeable array shaped like `like`, as T):
// its data, or nullptr for None.
template <typename T>
T* optional_output(const py::object& a, const py::array& like, const char* op, const char* name) {
  if (a.is_none()) return nullptr;
  if (!py::isinstance<py::array>(a)) fail_type(op, name, "must be a NumPy array or None");
  auto arr = py::reinterpret_borrow<py::array>(a);
  T* data = output<T>(arr, op, name);
  require_same_shape(like, arr, op, name);
  return data;
}

// None or the name of an activation.
inline cpu::Activation parse_activation(const py::object& activation, const char* op) {
  if (activation.is_none()) return cpu::Activation::none;
  if (!py::isinstance<py::str>(activation)) fail_type(op, "activation", "must be None or a str");
  const auto name = activation.cast<std::string>();
  if (name == "relu") return cpu::Activation::relu;
  if (name == "sigmoid") return cpu::Activation::sigmoid;
  if (name == "tanh") return cpu::Activation::tanh;
  fail_value(op, "activation", "must be None, 'relu', 'sigmoid' or 'tanh', got '" + name + "'");
}

// Calls fn(float{}) or fn(double{}) by the dtype.
template <typename F>
auto dispatch_float(DType dt, F&& fn) {
  if (dt == DType::float32) return fn(float{});
  return fn(double{});
}

}  // namespace fastnn::python
