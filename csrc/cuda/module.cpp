// fastnn._cuda: pybind11 bindings of the CUDA kernels.  Thin by design: read each array's
// __cuda_array_interface__ (device pointer, shape, dtype; C-contiguous only), run the
// cheap checks that keep the kernels inside their buffers, release the GIL, make the
// arrays' device current, launch on the caller's stream (an integer handle: CuPy's
// current stream, `cupy.cuda.get_current_stream().ptr`) and turn a CUDA error into a
// RuntimeError naming the op.  User-facing validation happened in fastnn/ops.py.
// Importing this module touches no device; only calls do.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels.h"
#include "common/shapes.h"        // the window arithmetic and checked sizes shared with the kernels
#include "python/array_utils.h"  // the option checks shared with fastnn._C

namespace py = pybind11;
namespace fc = fastnn::cuda;
namespace fp = fastnn::python;

namespace {

enum class DType { float32, float64, int64, boolean };

const char* dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int64: return "int64";
    default: return "bool";
  }
}

int64_t item_size(DType d) { return d == DType::float32 ? 4 : (d == DType::boolean ? 1 : 8); }

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

[[noreturn]] void fail_type(const std::string& op, const std::string& message) {
  throw py::type_error(op + ": " + message);
}
[[noreturn]] void fail_value(const std::string& op, const std::string& message) {
  throw py::value_error(op + ": " + message);
}

DeviceArray device_array(py::handle obj, const std::string& op, const char* name,
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
    a.size = fastnn::checked_mul(a.size, d, op.c_str(), "the element count");
  }
  const std::string typestr = cai["typestr"].cast<std::string>();
  if (typestr == "<f4") a.dtype = DType::float32;
  else if (typestr == "<f8") a.dtype = DType::float64;
  else if (typestr == "<i8") a.dtype = DType::int64;
  else if (typestr == "|b1") a.dtype = DType::boolean;
  else fail_type(op, std::string(name) + " has unsupported dtype " + typestr);
  fastnn::checked_mul(a.size, item_size(a.dtype), op.c_str(), "the byte count");
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

std::optional<DeviceArray> optional_array(py::handle obj, const std::string& op,
                                          const char* name, bool writeable = false) {
  if (obj.is_none()) return std::nullopt;
  return device_array(obj, op, name, writeable);
}

DType float_dtype(const DeviceArray& a, const std::string& op, const char* name) {
  if (a.dtype != DType::float32 && a.dtype != DType::float64) {
    fail_type(op, std::string(name) + " must be float32 or float64, got " + dtype_name(a.dtype));
  }
  return a.dtype;
}

void same_dtype(const DeviceArray& a, DType dtype, const std::string& op, const char* name) {
  if (a.dtype != dtype) {
    fail_type(op, std::string(name) + " must be " + dtype_name(dtype) + ", got " +
                      dtype_name(a.dtype));
  }
}

void same_size(const DeviceArray& a, int64_t size, const std::string& op, const char* name) {
  if (a.size != size) {
    fail_value(op, std::string(name) + " must have " + std::to_string(size) +
                       " elements, got " + std::to_string(a.size));
  }
}

void same_shape(const DeviceArray& a, const std::vector<int64_t>& shape, const std::string& op,
                const char* name) {
  if (a.shape != shape) {
    fail_value(op, std::string(name) + " must have shape " + fp::dims_text(shape.data(), shape.size()) +
                       ", got " + fp::dims_text(a.shape.data(), a.shape.size()));
  }
}

// A size the kernels hold in an int.
int as_int(int64_t v, const std::string& op, const char* what) {
  if (v < 0 || v > INT32_MAX) {
    fail_value(op, std::string(what) + " must be in [0, " + std::to_string(INT32_MAX) + "], got " +
                       std::to_string(v));
  }
  return static_cast<int>(v);
}

void require_ndim(const DeviceArray& a, int ndim, const std::string& op, const char* name) {
  if (a.ndim() != ndim) {
    fail_value(op, std::string(name) + " must be " + std::to_string(ndim) + "-D");
  }
}

[[noreturn]] void cuda_fail(const std::string& op, cudaError_t err) {
  throw std::runtime_error(op + ": CUDA error " + cudaGetErrorName(err) + ": " +
                           cudaGetErrorString(err));
}

// Make the device that owns `ptr` current for this thread's runtime (CuPy may be on
// another device than 0), so launches land in the arrays' context.
void select_device(const void* ptr, const std::string& op) {
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

using Named = std::initializer_list<std::pair<const DeviceArray*, const char*>>;

cudaStream_t as_stream(std::uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

// Run `launch` (returning a cudaError_t) without the GIL on the device of `device_ptr`;
// nothing runs when there is no data (empty arrays may carry a null pointer).
template <typename F>
void run(const std::string& op, const void* device_ptr, F&& launch) {
  py::gil_scoped_release release;
  if (device_ptr == nullptr) return;
  select_device(device_ptr, op);
  const cudaError_t err = launch();
  if (err != cudaSuccess) cuda_fail(op, err);
}

template <typename F>
cudaError_t by_dtype(DType dtype, F&& fn) {
  if (dtype == DType::float32) return fn(float{});
  return fn(double{});
}

using Padding = std::array<std::array<int64_t, 2>, 2>;  // ((top, bottom), (left, right))

// The convolution of x (n, h, w, c) with a kernel of shape w (kh, kw, c, o): options
// checked, output size recomputed from them (never taken from a buffer), every size
// within the kernels' ints.  The caller checks the output (or dy) against (n, ho, wo, o).
fc::ConvShape conv_shape(const DeviceArray& x, const DeviceArray& w, std::pair<int, int> stride,
                         const Padding& padding, std::pair<int, int> dilation,
                         const std::string& op, const char* x_name, const char* w_name) {
  require_ndim(x, 4, op, x_name);
  require_ndim(w, 4, op, w_name);
  const char* o = op.c_str();
  fp::require_range(stride.first, 1, fp::kMaxOption, o, "stride");
  fp::require_range(stride.second, 1, fp::kMaxOption, o, "stride");
  fp::require_range(dilation.first, 1, fp::kMaxOption, o, "dilation");
  fp::require_range(dilation.second, 1, fp::kMaxOption, o, "dilation");
  for (const auto& side : padding) {
    fp::require_range(side[0], 0, fp::kMaxOption, o, "padding");
    fp::require_range(side[1], 0, fp::kMaxOption, o, "padding");
  }
  if (w.shape[2] != x.shape[3]) {
    fail_value(op, std::string(w_name) + " and " + x_name + " disagree on input channels");
  }
  if (w.shape[0] < 1 || w.shape[1] < 1 || w.shape[2] < 1 || w.shape[3] < 1) {
    fail_value(op, std::string(w_name) + " must have non-empty kernel and channel axes");
  }
  const int64_t ho = fastnn::window_output_size(x.shape[1], w.shape[0], stride.first, padding[0][0], padding[0][1],
                                            dilation.first, o, "row");
  const int64_t wo = fastnn::window_output_size(x.shape[2], w.shape[1], stride.second, padding[1][0], padding[1][1],
                                            dilation.second, o, "column");
  fc::ConvShape s{};
  s.n = x.shape[0];
  s.h = as_int(x.shape[1], op, "the image height");
  s.w = as_int(x.shape[2], op, "the image width");
  s.c_in = as_int(x.shape[3], op, "the input channels");
  s.kh = as_int(w.shape[0], op, "the kernel height");
  s.kw = as_int(w.shape[1], op, "the kernel width");
  s.c_out = as_int(w.shape[3], op, "the output channels");
  s.ho = as_int(ho, op, "the output height");
  s.wo = as_int(wo, op, "the output width");
  s.stride_h = stride.first;
  s.stride_w = stride.second;
  s.pad_top = as_int(padding[0][0], op, "padding");
  s.pad_left = as_int(padding[1][0], op, "padding");
  s.dilation_h = dilation.first;
  s.dilation_w = dilation.second;
  return s;
}

std::vector<int64_t> conv_output_shape(const fc::ConvShape& s) { return {s.n, s.ho, s.wo, s.c_out}; }

// The pooling of x (the input; dx for the backward) into y (the output; dy): options
// checked (pad < kernel, so every window of an image with rows and columns holds a real
// pixel), the output size recomputed and compared with y.
fc::PoolShape pool_shape(const DeviceArray& x, const DeviceArray& y, std::pair<int, int> kernel,
                         std::pair<int, int> stride, std::pair<int, int> padding,
                         bool channels_last, const std::string& op) {
  require_ndim(x, 4, op, "x");
  require_ndim(y, 4, op, "y");
  const char* o = op.c_str();
  fp::require_range(kernel.first, 1, fp::kMaxOption, o, "kernel");
  fp::require_range(kernel.second, 1, fp::kMaxOption, o, "kernel");
  fp::require_range(stride.first, 1, fp::kMaxOption, o, "stride");
  fp::require_range(stride.second, 1, fp::kMaxOption, o, "stride");
  fp::require_range(padding.first, 0, kernel.first - 1, o, "padding");
  fp::require_range(padding.second, 0, kernel.second - 1, o, "padding");
  fc::PoolShape s{};
  s.channels_last = channels_last;
  s.n = x.shape[0];
  const int hd = channels_last ? 1 : 2, wd = channels_last ? 2 : 3, cd = channels_last ? 3 : 1;
  if (x.shape[hd] < 1 || x.shape[wd] < 1) fail_value(op, "the image must have at least one row and one column");
  s.h = as_int(x.shape[hd], op, "the image height");
  s.w = as_int(x.shape[wd], op, "the image width");
  s.c = as_int(x.shape[cd], op, "the channels");
  s.kh = kernel.first;
  s.kw = kernel.second;
  s.stride_h = stride.first;
  s.stride_w = stride.second;
  s.pad_h = padding.first;
  s.pad_w = padding.second;
  s.ho = as_int(fastnn::window_output_size(s.h, s.kh, s.stride_h, s.pad_h, s.pad_h, 1, o, "row"), op, "the output height");
  s.wo = as_int(fastnn::window_output_size(s.w, s.kw, s.stride_w, s.pad_w, s.pad_w, 1, o, "column"), op,
                "the output width");
  std::vector<int64_t> expected(4);
  expected[0] = s.n;
  expected[hd] = s.ho;
  expected[wd] = s.wo;
  expected[cd] = s.c;
  same_shape(y, expected, op, "the output");
  return s;
}

// ------------------------------------------------------------------ activations, dense

void activation(int kind, py::handle x_obj, py::handle y_obj, std::uintptr_t stream) {
  static const char* names[] = {"identity", "relu", "sigmoid", "tanh"};
  if (kind < fc::kRelu || kind > fc::kTanh) throw py::value_error("activation: unknown kind");
  const std::string op = names[kind];
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "out", true);
  const DType dt = float_dtype(x, op, "x");
  same_dtype(y, dt, op, "out");
  same_size(y, x.size, op, "out");
  run(op, x.data, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::activation_forward<T>(kind, x.ptr<T>(), y.ptr<T>(), x.size, as_stream(stream));
    });
  });
}

void activation_backward(int kind, py::handle dy_obj, py::handle y_obj, py::handle dx_obj,
                         std::uintptr_t stream) {
  static const char* names[] = {"", "relu_backward", "sigmoid_backward", "tanh_backward"};
  if (kind < fc::kRelu || kind > fc::kTanh) throw py::value_error("activation_backward: unknown kind");
  const std::string op = names[kind];
  const DeviceArray dy = device_array(dy_obj, op, "dy"), y = device_array(y_obj, op, "y");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(y, dt, op, "y");
  same_dtype(dx, dt, op, "out");
  same_size(y, dy.size, op, "y");
  same_size(dx, dy.size, op, "out");
  run(op, dy.data, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::activation_backward<T>(kind, dy.ptr<T>(), y.ptr<T>(), dx.ptr<T>(), dy.size,
                                        as_stream(stream));
    });
  });
}

void bias_activation(py::handle y_obj, py::handle b_obj, int kind, std::uintptr_t stream) {
  const std::string op = "linear";
  const DeviceArray y = device_array(y_obj, op, "out", true);
  require_ndim(y, 2, op, "out");
  const DType dt = float_dtype(y, op, "out");
  const auto b = optional_array(b_obj, op, "b");
  if (b) {
    same_dtype(*b, dt, op, "b");
    same_size(*b, y.shape[1], op, "b");
  }
  if (kind < fc::kIdentity || kind > fc::kTanh) fail_value(op, "unknown activation");
  run(op, y.data, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::bias_activation<T>(y.ptr<T>(), b ? b->ptr<T>() : nullptr, y.shape[0],
                                    y.shape[1], kind, as_stream(stream));
    });
  });
}

// dy seen as (outer, channels, inner); partial holds (chunks, channels).
void bias_backward(py::handle dy_obj, int64_t outer, int64_t channels, int64_t inner,
                   py::handle partial_obj, py::handle out_obj, std::uintptr_t stream) {
  const std::string op = "bias_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy");
  const DeviceArray partial = device_array(partial_obj, op, "workspace", true);
  const DeviceArray out = device_array(out_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(partial, dt, op, "workspace");
  same_dtype(out, dt, op, "out");
  if (outer < 0 || channels < 0 || inner < 0) fail_value(op, "negative sizes");
  same_size(dy, fastnn::checked_mul(fastnn::checked_mul(outer, channels, op.c_str(), "dy's size"), inner, op.c_str(),
                                "dy's size"),
            op, "dy");
  same_size(out, channels, op, "out");
  if (channels == 0 || partial.size % channels != 0) {
    if (channels == 0) return;
    fail_value(op, "workspace must hold whole rows of channels");
  }
  const int64_t chunks = partial.size / channels;
  run(op, out.data, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::bias_backward<T>(dy.ptr<T>(), outer, channels, inner, partial.ptr<T>(), chunks,
                                  out.ptr<T>(), as_stream(stream));
    });
  });
}

// ------------------------------------------------------------------ convolution

void conv2d(py::handle x_obj, py::handle w_obj, py::handle b_obj, std::pair<int, int> stride,
            const Padding& padding, std::pair<int, int> dilation, int kind,
            py::handle y_obj, std::uintptr_t stream) {
  const std::string op = "conv2d";
  const DeviceArray x = device_array(x_obj, op, "x"), w = device_array(w_obj, op, "w");
  const DeviceArray y = device_array(y_obj, op, "out", true);
  const DType dt = float_dtype(x, op, "x");
  same_dtype(w, dt, op, "w");
  same_dtype(y, dt, op, "out");
  const auto b = optional_array(b_obj, op, "b");
  const fc::ConvShape s = conv_shape(x, w, stride, padding, dilation, op, "x", "w");
  same_shape(y, conv_output_shape(s), op, "out");
  if (b) {
    same_dtype(*b, dt, op, "b");
    same_size(*b, s.c_out, op, "b");
  }
  if (kind < fc::kIdentity || kind > fc::kTanh) fail_value(op, "unknown activation");
  run(op, y.size ? y.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::conv2d_forward<T>(x.ptr<T>(), w.ptr<T>(), b ? b->ptr<T>() : nullptr, kind,
                                   y.ptr<T>(), s, as_stream(stream));
    });
  });
}

void conv2d_backward_data(py::handle dy_obj, py::handle w_obj, std::pair<int, int> stride,
                          const Padding& padding, std::pair<int, int> dilation,
                          py::handle dx_obj, std::uintptr_t stream) {
  const std::string op = "conv2d_backward_data";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), w = device_array(w_obj, op, "w");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(w, dt, op, "w");
  same_dtype(dx, dt, op, "out");
  const fc::ConvShape s = conv_shape(dx, w, stride, padding, dilation, op, "out", "w");
  same_shape(dy, conv_output_shape(s), op, "dy");
  run(op, dx.size ? dx.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::conv2d_backward_data<T>(dy.ptr<T>(), w.ptr<T>(), dx.ptr<T>(), s,
                                         as_stream(stream));
    });
  });
}

int64_t conv2d_backward_weights_splits(int64_t n, int h, int w, int c_in, int ho, int wo,
                                       int kh, int kw, int c_out) {
  const std::string op = "conv2d_backward_weights_splits";
  for (int64_t v : {n, int64_t(h), int64_t(w), int64_t(c_in), int64_t(ho), int64_t(wo), int64_t(kh), int64_t(kw),
                    int64_t(c_out)}) {
    if (v < 0) fail_value(op, "sizes must be non-negative");
  }
  fc::ConvShape s{};
  s.n = n; s.h = h; s.w = w; s.c_in = c_in; s.ho = ho; s.wo = wo; s.kh = kh; s.kw = kw;
  s.c_out = c_out;
  return fc::conv2d_backward_weights_splits(s);
}

void conv2d_backward_weights(py::handle dy_obj, py::handle x_obj, std::pair<int, int> stride,
                             const Padding& padding, std::pair<int, int> dilation,
                             py::handle dw_obj, py::handle workspace_obj,
                             std::uintptr_t stream) {
  const std::string op = "conv2d_backward_weights";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), x = device_array(x_obj, op, "x");
  const DeviceArray dw = device_array(dw_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(x, dt, op, "x");
  same_dtype(dw, dt, op, "out");
  const fc::ConvShape s = conv_shape(x, dw, stride, padding, dilation, op, "x", "out");
  same_shape(dy, conv_output_shape(s), op, "dy");
  const auto workspace = optional_array(workspace_obj, op, "workspace", true);
  int64_t splits = 1;
  if (workspace) {
    same_dtype(*workspace, dt, op, "workspace");
    if (dw.size == 0 || workspace->size % dw.size != 0) {
      fail_value(op, "workspace must hold whole copies of dw");
    }
    splits = workspace->size / dw.size;
  }
  run(op, dw.size ? dw.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::conv2d_backward_weights<T>(dy.ptr<T>(), x.ptr<T>(), dw.ptr<T>(),
                                            workspace ? workspace->ptr<T>() : nullptr, splits,
                                            s, as_stream(stream));
    });
  });
}

// ------------------------------------------------------------------ pooling

void max_pool2d(py::handle x_obj, std::pair<int, int> kernel, std::pair<int, int> stride,
                std::pair<int, int> padding, bool channels_last, py::handle y_obj,
                py::handle argmax_obj, std::uintptr_t stream) {
  const std::string op = "max_pool2d";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "y", true);
  const DeviceArray argmax = device_array(argmax_obj, op, "argmax", true);
  const DType dt = float_dtype(x, op, "x");
  same_dtype(y, dt, op, "y");
  same_dtype(argmax, DType::int64, op, "argmax");
  const fc::PoolShape s = pool_shape(x, y, kernel, stride, padding, channels_last, op);
  same_shape(argmax, y.shape, op, "argmax");
  run(op, y.size ? y.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::max_pool2d_forward<T>(x.ptr<T>(), y.ptr<T>(), argmax.ptr<int64_t>(), s,
                                       as_stream(stream));
    });
  });
}

void max_pool2d_backward(py::handle dy_obj, py::handle argmax_obj, py::handle dx_obj,
                         std::uintptr_t stream) {
  const std::string op = "max_pool2d_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy");
  const DeviceArray argmax = device_array(argmax_obj, op, "argmax");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(argmax, DType::int64, op, "argmax");
  same_dtype(dx, dt, op, "out");
  same_size(argmax, dy.size, op, "argmax");
  run(op, dx.size ? dx.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::max_pool2d_backward<T>(dy.ptr<T>(), argmax.ptr<int64_t>(), dy.size,
                                        dx.ptr<T>(), dx.size, as_stream(stream));
    });
  });
}

void avg_pool2d(py::handle x_obj, std::pair<int, int> kernel, std::pair<int, int> stride,
                std::pair<int, int> padding, bool channels_last, bool count_include_pad,
                py::handle y_obj, std::uintptr_t stream) {
  const std::string op = "avg_pool2d";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "out", true);
  const DType dt = float_dtype(x, op, "x");
  same_dtype(y, dt, op, "out");
  const fc::PoolShape s = pool_shape(x, y, kernel, stride, padding, channels_last, op);
  run(op, y.size ? y.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::avg_pool2d_forward<T>(x.ptr<T>(), y.ptr<T>(), count_include_pad, s,
                                       as_stream(stream));
    });
  });
}

void avg_pool2d_backward(py::handle dy_obj, std::pair<int, int> kernel,
                         std::pair<int, int> stride, std::pair<int, int> padding,
                         bool channels_last, bool count_include_pad, py::handle dx_obj,
                         std::uintptr_t stream) {
  const std::string op = "avg_pool2d_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(dx, dt, op, "out");
  const fc::PoolShape s = pool_shape(dx, dy, kernel, stride, padding, channels_last, op);
  run(op, dx.size ? dx.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::avg_pool2d_backward<T>(dy.ptr<T>(), dx.ptr<T>(), count_include_pad, s,
                                        as_stream(stream));
    });
  });
}

// ------------------------------------------------------------------ LRN

fc::LrnShape lrn_shape(const DeviceArray& x, int depth_radius, double bias, double alpha,
                       double beta, bool channels_last, const std::string& op) {
  require_ndim(x, 4, op, "x");
  if (depth_radius < 0) fail_value(op, "depth_radius must be >= 0");
  fc::LrnShape s{};
  s.size = x.size;
  s.channels = as_int(channels_last ? x.shape[3] : x.shape[1], op, "the channels");
  s.inner = channels_last ? 1 : x.shape[2] * x.shape[3];
  s.depth_radius = depth_radius;
  s.bias = bias;
  s.alpha = alpha;
  s.beta = beta;
  return s;
}

void local_response_norm(py::handle x_obj, int depth_radius, double bias, double alpha,
                         double beta, bool channels_last, py::handle y_obj,
                         py::handle scale_obj, std::uintptr_t stream) {
  const std::string op = "local_response_norm";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "y", true);
  const DeviceArray scale = device_array(scale_obj, op, "scale", true);
  const DType dt = float_dtype(x, op, "x");
  same_dtype(y, dt, op, "y");
  same_dtype(scale, dt, op, "scale");
  same_shape(y, x.shape, op, "y");
  same_shape(scale, x.shape, op, "scale");
  const fc::LrnShape s = lrn_shape(x, depth_radius, bias, alpha, beta, channels_last, op);
  run(op, x.size ? x.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::lrn_forward<T>(x.ptr<T>(), y.ptr<T>(), scale.ptr<T>(), s, as_stream(stream));
    });
  });
}

void local_response_norm_backward(py::handle dy_obj, py::handle x_obj, py::handle y_obj,
                                  py::handle scale_obj, int depth_radius, double bias,
                                  double alpha, double beta, bool channels_last,
                                  py::handle dx_obj, std::uintptr_t stream) {
  const std::string op = "local_response_norm_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), x = device_array(x_obj, op, "x");
  const DeviceArray y = device_array(y_obj, op, "y"), scale = device_array(scale_obj, op, "scale");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  for (const auto& [a, name] : Named{{&x, "x"}, {&y, "y"}, {&scale, "scale"}, {&dx, "out"}}) {
    same_dtype(*a, dt, op, name);
    same_shape(*a, dy.shape, op, name);
  }
  const fc::LrnShape s = lrn_shape(dy, depth_radius, bias, alpha, beta, channels_last, op);
  run(op, dy.size ? dy.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::lrn_backward<T>(dy.ptr<T>(), x.ptr<T>(), y.ptr<T>(), scale.ptr<T>(),
                                 dx.ptr<T>(), s, as_stream(stream));
    });
  });
}

// ------------------------------------------------------------------ losses

// Labels: (n,) int64 class indices or (n, classes) float targets of the logits' dtype.
std::pair<const int64_t*, const void*> labels_of(const DeviceArray& labels, DType dt, int64_t n,
                                                 int64_t classes, const std::string& op) {
  if (labels.dtype == DType::int64) {
    require_ndim(labels, 1, op, "labels");
    same_size(labels, n, op, "labels");
    return {labels.ptr<int64_t>(), nullptr};
  }
  same_dtype(labels, dt, op, "labels");
  same_shape(labels, {n, classes}, op, "labels");
  return {nullptr, labels.data};
}

void softmax_cross_entropy(py::handle logits_obj, py::handle labels_obj, py::handle probs_obj,
                           py::handle row_loss_obj, std::uintptr_t stream) {
  const std::string op = "softmax_cross_entropy";
  const DeviceArray logits = device_array(logits_obj, op, "logits");
  const DeviceArray labels = device_array(labels_obj, op, "labels");
  const DeviceArray probs = device_array(probs_obj, op, "probs", true);
  const DeviceArray row_loss = device_array(row_loss_obj, op, "row_loss", true);
  require_ndim(logits, 2, op, "logits");
  const DType dt = float_dtype(logits, op, "logits");
  const int64_t n = logits.shape[0], classes = logits.shape[1];
  same_dtype(probs, dt, op, "probs");
  same_shape(probs, logits.shape, op, "probs");
  same_dtype(row_loss, dt, op, "row_loss");
  same_size(row_loss, n, op, "row_loss");
  const auto [index, dense] = labels_of(labels, dt, n, classes, op);
  run(op, logits.size ? logits.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::softmax_cross_entropy_forward<T>(logits.ptr<T>(), index,
                                                  static_cast<const T*>(dense), probs.ptr<T>(),
                                                  row_loss.ptr<T>(), n, classes,
                                                  as_stream(stream));
    });
  });
}

void softmax_cross_entropy_backward(double scale, py::handle probs_obj, py::handle labels_obj,
                                    py::handle dx_obj, std::uintptr_t stream) {
  const std::string op = "softmax_cross_entropy_backward";
  const DeviceArray probs = device_array(probs_obj, op, "probs");
  const DeviceArray labels = device_array(labels_obj, op, "labels");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  require_ndim(probs, 2, op, "probs");
  const DType dt = float_dtype(probs, op, "probs");
  const int64_t n = probs.shape[0], classes = probs.shape[1];
  same_dtype(dx, dt, op, "out");
  same_shape(dx, probs.shape, op, "out");
  const auto [index, dense] = labels_of(labels, dt, n, classes, op);
  run(op, probs.size ? probs.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::softmax_cross_entropy_backward<T>(scale, probs.ptr<T>(), index,
                                                   static_cast<const T*>(dense), dx.ptr<T>(), n,
                                                   classes, as_stream(stream));
    });
  });
}

// ------------------------------------------------------------------ dropout

void dropout(py::handle x_obj, std::uint32_t threshold, double scale, std::uint64_t seed,
             py::handle y_obj, py::handle mask_obj, std::uintptr_t stream) {
  const std::string op = "dropout";
  const DeviceArray x = device_array(x_obj, op, "x"), y = device_array(y_obj, op, "out", true);
  const DeviceArray mask = device_array(mask_obj, op, "mask", true);
  const DType dt = float_dtype(x, op, "x");
  same_dtype(y, dt, op, "out");
  same_dtype(mask, DType::boolean, op, "mask");
  same_size(y, x.size, op, "out");
  same_size(mask, x.size, op, "mask");
  run(op, x.size ? x.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::dropout_forward<T>(x.ptr<T>(), y.ptr<T>(), mask.ptr<bool>(), x.size, seed,
                                    threshold, scale, as_stream(stream));
    });
  });
}

void dropout_backward(py::handle dy_obj, py::handle mask_obj, double scale, py::handle dx_obj,
                      std::uintptr_t stream) {
  const std::string op = "dropout_backward";
  const DeviceArray dy = device_array(dy_obj, op, "dy"), mask = device_array(mask_obj, op, "mask");
  const DeviceArray dx = device_array(dx_obj, op, "out", true);
  const DType dt = float_dtype(dy, op, "dy");
  same_dtype(mask, DType::boolean, op, "mask");
  same_dtype(dx, dt, op, "out");
  same_size(mask, dy.size, op, "mask");
  same_size(dx, dy.size, op, "out");
  run(op, dy.size ? dy.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::dropout_backward<T>(dy.ptr<T>(), mask.ptr<bool>(), dx.ptr<T>(), dy.size, scale,
                                     as_stream(stream));
    });
  });
}

// ------------------------------------------------------------------ optimizers

void sgd_update(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj, double lr,
                double momentum, double weight_decay, bool nesterov, std::uintptr_t stream) {
  const std::string op = "sgd_update";
  const DeviceArray param = device_array(param_obj, op, "param", true);
  const DeviceArray grad = device_array(grad_obj, op, "grad", true);
  const auto velocity = optional_array(velocity_obj, op, "velocity", true);
  const DType dt = float_dtype(param, op, "param");
  same_dtype(grad, dt, op, "grad");
  same_size(grad, param.size, op, "grad");
  if (velocity) {
    same_dtype(*velocity, dt, op, "velocity");
    same_size(*velocity, param.size, op, "velocity");
  } else if (momentum != 0.0) {
    fail_value(op, "velocity is needed when momentum != 0");
  }
  run(op, param.size ? param.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::sgd_update<T>(param.ptr<T>(), grad.ptr<T>(),
                               velocity ? velocity->ptr<T>() : nullptr, param.size, lr, momentum,
                               weight_decay, nesterov, as_stream(stream));
    });
  });
}

void adam_update(py::handle param_obj, py::handle grad_obj, py::handle m_obj, py::handle v_obj,
                 double lr, double beta1, double beta2, double eps, double weight_decay,
                 double m_scale, double v_scale, std::uintptr_t stream) {
  const std::string op = "adam_update";
  const DeviceArray param = device_array(param_obj, op, "param", true);
  const DeviceArray grad = device_array(grad_obj, op, "grad", true);
  const DeviceArray m = device_array(m_obj, op, "m", true), v = device_array(v_obj, op, "v", true);
  const DType dt = float_dtype(param, op, "param");
  for (const auto& [a, name] : Named{{&grad, "grad"}, {&m, "m"}, {&v, "v"}}) {
    same_dtype(*a, dt, op, name);
    same_size(*a, param.size, op, name);
  }
  run(op, param.size ? param.data : nullptr, [&] {
    return by_dtype(dt, [&](auto t) {
      using T = decltype(t);
      return fc::adam_update<T>(param.ptr<T>(), grad.ptr<T>(), m.ptr<T>(), v.ptr<T>(),
                                param.size, lr, beta1, beta2, eps, weight_decay, m_scale,
                                v_scale, as_stream(stream));
    });
  });
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastnn's CUDA kernels (device arrays via __cuda_array_interface__).";
  py::arg s("stream");
  m.attr("RELU") = int{fc::kRelu};
  m.attr("SIGMOID") = int{fc::kSigmoid};
  m.attr("TANH") = int{fc::kTanh};
  m.def("activation", &activation, py::arg("kind"), py::arg("x"), py::arg("out"), s);
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("dy"),
        py::arg("y"), py::arg("out"), s);
  m.def("bias_activation", &bias_activation, py::arg("y"), py::arg("b").none(true),
        py::arg("kind"), s);
  m.def("bias_backward_chunks", &fc::bias_backward_chunks, py::arg("per_channel"),
        py::arg("channels"));
  m.def("bias_backward", &bias_backward, py::arg("dy"), py::arg("outer"), py::arg("channels"),
        py::arg("inner"), py::arg("workspace"), py::arg("out"), s);
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b").none(true),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("kind"),
        py::arg("out"), s);
  m.def("conv2d_backward_data", &conv2d_backward_data, py::arg("dy"), py::arg("w"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("out"), s);
  m.def("conv2d_backward_weights_splits", &conv2d_backward_weights_splits, py::arg("n"),
        py::arg("h"), py::arg("w"), py::arg("c_in"), py::arg("ho"), py::arg("wo"),
        py::arg("kh"), py::arg("kw"), py::arg("c_out"));
  m.def("conv2d_backward_weights", &conv2d_backward_weights, py::arg("dy"), py::arg("x"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("out"),
        py::arg("workspace").none(true), s);
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("channels_last"), py::arg("y"), py::arg("argmax"), s);
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dy"), py::arg("argmax"),
        py::arg("out"), s);
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("channels_last"), py::arg("count_include_pad"),
        py::arg("out"), s);
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("kernel"),
        py::arg("stride"), py::arg("padding"), py::arg("channels_last"),
        py::arg("count_include_pad"), py::arg("out"), s);
  m.def("local_response_norm", &local_response_norm, py::arg("x"), py::arg("depth_radius"),
        py::arg("bias"), py::arg("alpha"), py::arg("beta"), py::arg("channels_last"),
        py::arg("y"), py::arg("scale"), s);
  m.def("local_response_norm_backward", &local_response_norm_backward, py::arg("dy"),
        py::arg("x"), py::arg("y"), py::arg("scale"), py::arg("depth_radius"), py::arg("bias"),
        py::arg("alpha"), py::arg("beta"), py::arg("channels_last"), py::arg("out"), s);
  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"),
        py::arg("probs"), py::arg("row_loss"), s);
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("scale"),
        py::arg("probs"), py::arg("labels"), py::arg("out"), s);
  m.def("dropout", &dropout, py::arg("x"), py::arg("threshold"), py::arg("scale"),
        py::arg("seed"), py::arg("out"), py::arg("mask"), s);
  m.def("dropout_backward", &dropout_backward, py::arg("dy"), py::arg("mask"), py::arg("scale"),
        py::arg("out"), s);
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"),
        py::arg("velocity").none(true), py::arg("lr"), py::arg("momentum"),
        py::arg("weight_decay"), py::arg("nesterov"), s);
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("m_scale"), py::arg("v_scale"), s);
}
