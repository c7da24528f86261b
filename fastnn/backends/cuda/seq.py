"""cuda sequence ops (maxout, seq2col, the ragged reductions, gather_add): on the host.

fastnn._cuda has no kernels for these yet. Each op copies its arrays to the host, runs the
NumPy reference (:mod:`fastnn.backends.reference.seq`, the same results and errors) and
copies the result back to the device, into ``out`` when one was given: correct everywhere,
and as slow as two transfers and a NumPy pass make it.
"""

from __future__ import annotations

from fastnn.backends.cuda.common import CudaOps
from fastnn.backends.reference.seq import SeqOps as _ReferenceSeqOps

_HOST = _ReferenceSeqOps()


class SeqOps(CudaOps):
    def _on_host(self, op, *args, out=None, **options):
        xp = self.xp
        host = [xp.asnumpy(a) if isinstance(a, xp.ndarray) else a for a in args]
        options = {k: xp.asnumpy(v) if isinstance(v, xp.ndarray) else v
                   for k, v in options.items()}
        result = getattr(_HOST, op)(*host, **options)
        if isinstance(result, tuple):
            return tuple(xp.asarray(r) for r in result)
        if out is None:
            return xp.asarray(result)
        out[...] = xp.asarray(result)
        return out

    def maxout(self, x):
        return self._on_host("maxout", x)

    def maxout_backward(self, dy, which, pieces, *, out=None):
        return self._on_host("maxout_backward", dy, which, pieces, out=out)

    def seq2col(self, x, *, nw, lengths=None, out=None):
        return self._on_host("seq2col", x, nw=nw, lengths=lengths, out=out)

    def seq2col_backward(self, dy, *, nw, lengths=None, out=None):
        return self._on_host("seq2col_backward", dy, nw=nw, lengths=lengths, out=out)

    def reduce_sum(self, x, lengths, *, out=None):
        return self._on_host("reduce_sum", x, lengths, out=out)

    def reduce_sum_backward(self, dy, lengths, *, out=None):
        return self._on_host("reduce_sum_backward", dy, lengths, out=out)

    def reduce_mean(self, x, lengths, *, out=None):
        return self._on_host("reduce_mean", x, lengths, out=out)

    def reduce_mean_backward(self, dy, lengths, *, out=None):
        return self._on_host("reduce_mean_backward", dy, lengths, out=out)

    def reduce_max(self, x, lengths):
        return self._on_host("reduce_max", x, lengths)

    def reduce_max_backward(self, dy, which, lengths, *, out=None):
        return self._on_host("reduce_max_backward", dy, which, lengths, out=out)

    def gather_add(self, table, indices, *, out=None):
        return self._on_host("gather_add", table, indices, out=out)
