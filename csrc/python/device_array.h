// What every binding of fastnn._cuda (csrc/python/*_cuda.cpp) shares: each array read
// through its __cuda_array_interface__ (device pointer, shape, dtype; C-contiguous only)
// with the cheap checks that keep the kernels inside their buffers, and `launch`, the one
// way a binding runs a kernel: without the GIL, on the arrays' device, on the caller's
// stream (an integer handle: CuPy's current stream, `cupy.cuda.get_current_stream().ptr`),
// for the array's float type, with a CUDA error turned into a RuntimeError naming the op.
// User-facing validation happened in fastnn/ops.py.  Nothing here touches a device until
// a call launches.
#pragma once

#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/shapes.h"
#include "python/array_utils.h"  // the option and size checks shared with fastnn._C

namespace fastnn::python::device {

namespace py = pybind11;

enum class DType { float32, float64, int64, boolean };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int64: return "int64";
    default: return "bool";
  }
}

inline int64_t item_size(DType d) { return d == DType::float32 ? 4 : (d == DType::boolean ? 1 : 8); }

// A C-contiguous, element-aligned device array seen through __cuda_array_interface__.
struct DeviceArray {
  void* data = nullptr;
  std::vector<int64_t> shape;
  int64_t size = 1;
  DType dtype = DType::float32;

  int ndim() const { return static_cast<int>(shape.size()); }
  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
};

[[noreturn]] inline void fail_type(const std::string& op, const std::string& message) {
  throw py::type_error(op + ": " + message);
}
[[noreturn]] inline void fail_value(const std::string& op, const std::string& message) {
  throw py::value_error(op + ": " + message);
}

inline DeviceArray device_array(py::handle obj, const std::string& op, const char* name,
                         bool writeable = false) {
  if (obj.is_none() || !py::hasattr(obj, "__cuda_array_interface__")) {
    fail_type(op, std::string(name) + " must be a CUDA device array (CuPy), got " +
                      std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::object interface = obj.attr("__cuda_array_interface__");
  if (!py::isinstance<py::dict>(interface)) {
    fail_type(op, std::string(name) + " must be a CUDA device array (CuPy), got " +
                      std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::dict cai = interface;
  DeviceArray a;
  py::tuple data = cai["data"];
  a.data = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  if (writeable && data[1].cast<bool>()) fail_value(op, std::string(name) + " is read-only");
  for (py::handle dim : py::tuple(cai["shape"])) {
    const int64_t d = dim.cast<int64_t>();
    if (d < 0) fail_value(op, std::string(name) + " has a negative dimension");
    a.shape.push_back(d);
    a.size = checked_mul(a.size, d, op.c_str(), "the element count");
  }
  const std::string typestr = cai["typestr"].cast<std::string>();
  if (typestr == "<f4") a.dtype = DType::float32;
  else if (typestr == "<f8") a.dtype = DType::float64;
  else if (typestr == "<i8") a.dtype = DType::int64;
  else if (typestr == "|b1") a.dtype = DType::boolean;
  else fail_type(op, std::string(name) + " has unsupported dtype " + typestr);
  checked_mul(a.size, item_size(a.dtype), op.c_str(), "the byte count");
  if (a.size > 0 && reinterpret_cast<std::uintptr_t>(a.data) % item_size(a.dtype) != 0) {
    fail_value(op, std::string(name) + " must be aligned to its " + std::to_string(item_size(a.dtype)) +
                       "-byte elements");
  }
  if (cai.contains("mask") && !cai["mask"].is_none()) {
    fail_value(op, std::string(name) + " must not be a masked array");
  }
  if (cai.contains("strides") && !cai["strides"].is_none() && a.size > 0) {
    const int64_t item = item_size(a.dtype);
    py::tuple strides = cai["strides"];
    int64_t expected = item;
    for (int d = a.ndim() - 1; d >= 0; --d) {
      if (a.shape[d] != 1 && strides[d].cast<int64_t>() != expected) {
        fail_value(op, std::string(name) + " must be C-contiguous");
      }
      expected *= a.shape[d];
    }
  }
  return a;
}

inline std::optional<DeviceArray> optional_array(py::handle obj, const std::string& op,
                                          const char* name, bool writeable = false) {
  if (obj.is_none()) return std::nullopt;
  return device_array(obj, op, name, writeable);
}

inline DType float_dtype(const DeviceArray& a, const std::string& op, const char* name) {
  if (a.dtype != DType::float32 && a.dtype != DType::float64) {
    fail_type(op, std::string(name) + " must be float32 or float64, got " + dtype_name(a.dtype));
  }
  return a.dtype;
}

inline void same_dtype(const DeviceArray& a, DType dtype, const std::string& op, const char* name) {
  if (a.dtype != dtype) {
    fail_type(op, std::string(name) + " must be " + dtype_name(dtype) + ", got " +
                      dtype_name(a.dtype));
  }
}

using Named = std::initializer_list<std::pair<const DeviceArray*, const char*>>;

// The float dtype of `a`, which each array of `same` must have too (checked in order).
inline DType float_dtype(const DeviceArray& a, const std::string& op, const char* name, Named same) {
  const DType dtype = float_dtype(a, op, name);
  for (const auto& [b, b_name] : same) same_dtype(*b, dtype, op, b_name);
  return dtype;
}

inline void same_size(const DeviceArray& a, int64_t size, const std::string& op, const char* name) {
  if (a.size != size) {
    fail_value(op, std::string(name) + " must have " + std::to_string(size) +
                       " elements, got " + std::to_string(a.size));
  }
}

inline void same_shape(const DeviceArray& a, const std::vector<int64_t>& shape, const std::string& op,
                const char* name) {
  if (a.shape != shape) {
    fail_value(op, std::string(name) + " must have shape " + dims_text(shape.data(), shape.size()) +
                       ", got " + dims_text(a.shape.data(), a.shape.size()));
  }
}

// A size the kernels hold in an int.
inline int as_int(int64_t v, const std::string& op, const char* what) {
  if (v < 0 || v > INT32_MAX) {
    fail_value(op, std::string(what) + " must be in [0, " + std::to_string(INT32_MAX) + "], got " +
                       std::to_string(v));
  }
  return static_cast<int>(v);
}

inline void require_ndim(const DeviceArray& a, int ndim, const std::string& op, const char* name) {
  if (a.ndim() != ndim) {
    fail_value(op, std::string(name) + " must be " + std::to_string(ndim) + "-D");
  }
}

[[noreturn]] inline void cuda_fail(const std::string& op, cudaError_t err) {
  throw std::runtime_error(op + ": CUDA error " + cudaGetErrorName(err) + ": " +
                           cudaGetErrorString(err));
}

// Make the device that owns `ptr` current for this thread's runtime (CuPy may be on
// another device than 0), so launches land in the arrays' context.
inline void select_device(const void* ptr, const std::string& op) {
  cudaPointerAttributes attributes{};
  cudaError_t err = cudaPointerGetAttributes(&attributes, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it: it concerned this query only
    cuda_fail(op, err);
  }
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw std::runtime_error(op + ": the array data is not in CUDA device memory");
  }
  int current = -1;
  if ((err = cudaGetDevice(&current)) != cudaSuccess) cuda_fail(op, err);
  if (current != attributes.device && (err = cudaSetDevice(attributes.device)) != cudaSuccess) {
    cuda_fail(op, err);
  }
}

inline cudaStream_t as_stream(std::uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

// Runs kernel(T{}) (returning a cudaError_t) for T the float type `dtype` names, without
// the GIL, on the device of `device_ptr`; nothing runs when there is no data (empty
// arrays may carry a null pointer).  A CUDA error becomes a RuntimeError naming the op.
template <typename F>
void launch(const std::string& op, const void* device_ptr, DType dtype, F&& kernel) {
  py::gil_scoped_release release;
  if (device_ptr == nullptr) return;
  select_device(device_ptr, op);
  const cudaError_t err = dtype == DType::float32 ? kernel(float{}) : kernel(double{});
  if (err != cudaSuccess) cuda_fail(op, err);
}

}  // namespace fastnn::python::device
