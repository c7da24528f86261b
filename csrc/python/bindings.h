// One bind_* function per op family; module_cpu.cpp calls each of them.
#pragma once

#include <pybind11/pybind11.h>

namespace fastnn::python {

void bind_activations(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_machine(pybind11::module_& m);
void bind_pool(pybind11::module_& m);
void bind_lrn(pybind11::module_& m);
void bind_elementwise(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_seq(pybind11::module_& m);

}  // namespace fastnn::python
