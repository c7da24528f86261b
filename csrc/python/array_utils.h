// The few checks a binding needs to stay memory-safe.  User-facing validation
// (with the full messages) happens once in fastnn/ops.py; these only guard
// against a caller that bypasses it: wrong dtype, non-contiguous buffers or
// mismatched element counts raise ValueError/TypeError instead of reading
// out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastnn::python {

namespace py = pybind11;

enum class DType { float32, float64 };

inline DType dtype_of(const py::array& a, const char* op, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::float32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::float64;
  throw py::type_error(std::string(op) + ": " + name + " must be float32 or float64");
}

inline void require_contiguous(const py::array& a, const char* op, const char* name) {
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
  }
}

inline void require_writeable(const py::array& a, const char* op, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(op) + ": " + name + " must be writeable");
}

inline void require_same(const py::array& a, const py::array& b, const char* op, const char* name_a,
                         const char* name_b) {
  if (!a.dtype().is(b.dtype())) {
    throw py::type_error(std::string(op) + ": " + name_a + " and " + name_b + " must have the same dtype");
  }
  if (a.size() != b.size()) {
    throw py::value_error(std::string(op) + ": " + name_a + " and " + name_b + " must have the same size");
  }
}

template <typename T>
const T* in_ptr(const py::array& a) { return static_cast<const T*>(a.data()); }

template <typename T>
T* out_ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// Calls fn.template operator()<float>() or <double>() by the array's dtype.
template <typename F>
auto dispatch_float(DType dt, F&& fn) {
  if (dt == DType::float32) return fn(float{});
  return fn(double{});
}

}  // namespace fastnn::python
