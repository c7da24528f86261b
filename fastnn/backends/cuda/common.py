"""What the cuda op families share: the kernels' activation codes, the current stream,
output allocation and the layout conversions at the NHWC kernels' boundary."""

from __future__ import annotations

from fastnn._shapes import to_hwio, to_nhwc

ACTIVATION = {None: 0, "relu": 1, "sigmoid": 2, "tanh": 3}


class CudaOps:
    """Base of the cuda mixins: ``_cuda`` (fastnn._cuda) and ``xp`` (CuPy) are set by
    :class:`~fastnn.backends.cuda.CudaBackend`."""

    _cuda = None
    xp = None

    def _stream(self) -> int:
        return self.xp.cuda.get_current_stream().ptr

    def _empty(self, out, shape, dtype):
        return self.xp.empty(tuple(shape), dtype=dtype) if out is None else out

    def _to_nhwc(self, x, layout="NCHW"):
        return self.xp.ascontiguousarray(to_nhwc(x, layout))

    def _to_hwio(self, w, layout="NCHW"):
        return self.xp.ascontiguousarray(to_hwio(w, layout))

    def _finish(self, result, out, from_layout, layout="NCHW"):
        """``result`` (NHWC/HWIO) converted by ``from_layout`` to the caller's layout, in
        ``out`` when one was given."""
        converted = from_layout(result, layout)
        if out is None:
            return self.xp.ascontiguousarray(converted)
        out[...] = converted
        return out
