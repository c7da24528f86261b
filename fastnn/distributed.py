"""Data-parallel training over MPI (mpi4py): the same model on every rank, each rank on its
shard of every batch, gradients averaged with allreduce before each optimizer step.

The design is Horovod's: no parameter server, no home-made transport. Rank 0 broadcasts the
initial parameters; every rank draws the same shuffled order (same seed) and takes its own
contiguous slice of each *global* batch of ``ranks x bs`` samples, so the shards are
disjoint and cover the data; after the backward pass the gradients, weighted by each rank's
share of the global batch, are summed in place over every rank (``MPI_Allreduce`` on a flat
buffer, in buckets) and each rank takes the same optimizer step. N ranks with a per-rank
batch ``bs`` therefore follow the parameters of one process with batch ``N x bs`` over the
same order, to floating-point rounding. Losses and metrics are summed over the ranks, the
validation set is evaluated in shards and reduced, and only rank 0 writes files.

Use it by passing a communicator to :meth:`fastnn.nn.Learner.fit`:

    from fastnn import distributed
    comm = distributed.init()                   # MPI.COMM_WORLD; threads per rank set
    learner.fit(X, Y, epochs=20, bs=64, distributed=comm)

and launching with ``mpirun -n 4 python train.py`` (or ``srun``). ``fastnn train`` does
this by itself when it finds it was started by an MPI launcher. The learning rate is not
scaled: with N ranks the step sees N times the samples of a single-process run with the
same ``bs`` (scale the rate yourself, e.g. linearly, if you want the single-process
schedule's progress per epoch).

Requires the ``mpi`` extra (``pip install 'fastnn[mpi]'``: mpi4py and the MPICH wheel from
the package index; an MPI installed on the cluster works as well: mpi4py then uses the
library it was built against).

Example
-------
>>> from fastnn import distributed
>>> comm = distributed.init()      # doctest: +SKIP  (needs mpi4py)
>>> comm.rank, comm.size           # doctest: +SKIP
(0, 1)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

__all__ = ["Communicator", "init", "launched_by_mpi", "DistributedError"]

# Environment variables MPI launchers set in every process they start (MPICH/Hydra and
# Intel MPI: PMI_*; Open MPI: OMPI_*; Slurm's srun: SLURM_*, PMIX_*).
# Seconds a failing rank waits between printing its message and MPI_Abort (abort()).
_ABORT_GRACE_S = 0.5

_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
_SLURM_SIZE = "SLURM_NTASKS"


class DistributedError(RuntimeError):
    """An MPI job cannot go on: mpi4py is missing, or the ranks disagree."""


def launched_by_mpi() -> int:
    """How many processes the MPI launcher (``mpirun``, ``mpiexec``, ``srun``) started this
    one among, read from its environment without importing MPI; 0 when none did.

    Example
    -------
    >>> launched_by_mpi() >= 0
    True
    """
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    if os.environ.get("SLURM_STEP_ID") is not None and os.environ.get(_SLURM_SIZE, "").isdigit():
        return int(os.environ[_SLURM_SIZE])  # inside an srun step (not just an allocation)
    return 0


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            "fastnn.distributed needs mpi4py and an MPI library: pip install 'fastnn[mpi]' "
            f"(mpi4py and MPICH from the package index), or mpi4py built against your "
            f"cluster's MPI ({exc})") from None
    return MPI


class Communicator:
    """The ranks of one data-parallel job: a wrapper over an mpi4py communicator with the
    collectives :class:`~fastnn.nn.Learner` needs.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``.
    bucket_bytes : int
        Size of one allreduce over the flat gradient buffer (default 4 MiB: the seed
        network's 1.8 MB gradient goes in one call; larger models in several, as
        Horovod's fusion buffer and PyTorch DDP's buckets do).

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of ranks.
    is_root : bool
        ``rank == 0``: the rank that writes files and prints.
    """

    def __init__(self, comm: Any = None, *, bucket_bytes: int = 4 << 20) -> None:
        if not (isinstance(bucket_bytes, int) and bucket_bytes >= 1024):
            raise ValueError(f"Communicator: bucket_bytes must be an int >= 1024, got "
                             f"{bucket_bytes!r}")
        MPI = _import_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.is_root = self.rank == 0
        self.bucket_bytes = bucket_bytes
        self._buffer: Optional[np.ndarray] = None

    def __repr__(self) -> str:
        return f"Communicator(rank={self.rank}, size={self.size})"

    # ------------------------------------------------------------------ collectives

    def broadcast_parameters(self, parameters: Sequence, root: int = 0) -> None:
        """Overwrite every rank's parameter tensors with ``root``'s, in place."""
        for parameter in parameters:
            tensor = _host(parameter.tensor)
            self.comm.Bcast(tensor, root=root)
            if tensor is not parameter.tensor:
                parameter.tensor[...] = _like(tensor, parameter.tensor)

    def allreduce_gradients(self, parameters: Sequence, weight: float,
                            flags: Sequence[float] = ()) -> np.ndarray:
        """Replace every parameter's gradient by the sum over the ranks of ``weight x``
        gradient, in place; ``flags`` (a few numbers) are summed along in the same calls.
        Returns the summed flags.

        The gradients are copied into one flat buffer of their dtype (reused across steps),
        reduced in buckets of ``bucket_bytes`` with ``MPI_IN_PLACE``, and copied back.
        """
        dtype = parameters[0].gradient.dtype if parameters else np.dtype(np.float64)
        sizes = [p.gradient.size for p in parameters]
        total = sum(sizes) + len(flags)
        buffer = self._buffer
        if buffer is None or buffer.dtype != dtype or buffer.size != total:
            buffer = self._buffer = np.empty(total, dtype=dtype)
        offset = 0
        for parameter, size in zip(parameters, sizes):
            np.multiply(_host(parameter.gradient).reshape(-1), weight,
                        out=buffer[offset:offset + size])
            offset += size
        buffer[offset:] = flags
        step = max(1, self.bucket_bytes // buffer.itemsize)
        for start in range(0, total, step):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer[start:start + step],
                                op=self.MPI.SUM)
        offset = 0
        for parameter, size in zip(parameters, sizes):
            chunk = buffer[offset:offset + size].reshape(parameter.gradient.shape)
            if isinstance(parameter.gradient, np.ndarray):
                parameter.gradient[...] = chunk
            else:  # a CuPy gradient
                parameter.gradient[...] = _like(chunk, parameter.gradient)
            offset += size
        return buffer[offset:].astype(np.float64)

    def sum(self, values: Sequence[float]) -> list[float]:
        """The element-wise sum of ``values`` (floats) over every rank."""
        local = np.asarray(values, dtype=np.float64)
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=self.MPI.SUM)
        return [float(v) for v in total]

    def max(self, value: float) -> float:
        """The largest ``value`` over the ranks."""
        return float(self.comm.allreduce(float(value), op=self.MPI.MAX))

    def broadcast(self, obj: Any, root: int = 0) -> Any:
        """``root``'s ``obj`` (a small Python object) on every rank."""
        return self.comm.bcast(obj, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def parameters_in_sync(self, parameters: Sequence) -> bool:
        """Whether every rank holds bit-identical parameter tensors (a checksum of their
        bytes compared across ranks: a check for tests and debugging, one small collective).
        """
        import hashlib

        digest = hashlib.sha256()
        for parameter in parameters:
            digest.update(np.ascontiguousarray(_host(parameter.tensor)).tobytes())
        mine = digest.hexdigest()
        return all(other == mine for other in self.comm.allgather(mine))

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``message`` naming this rank and end every rank of the job (``MPI_Abort``):
        what a rank that cannot go on must do, since the others would otherwise wait in
        the next collective forever."""
        print(f"fastnn.distributed: rank {self.rank} of {self.size}: {message}; ending all "
              "ranks", file=sys.stderr, flush=True)
        # The launcher relays each rank's stderr through a pipe and, on an abort, ends the
        # job without draining it: MPICH's Hydra lost this line in about 1 of 12 runs.  A
        # pause lets the relay pass it on first (0 of 60 runs lost it).
        time.sleep(_ABORT_GRACE_S)
        self.comm.Abort(code)

    # ------------------------------------------------------------------ sharding

    def shard(self, start: int, stop: int, bs: int) -> tuple[int, int]:
        """This rank's rows ``[first, last)`` of the global batch ``[start, stop)``: the
        ``rank``-th run of ``bs`` rows, cut at ``stop`` (empty for the last ranks of a short
        final batch)."""
        first = min(start + self.rank * bs, stop)
        return first, min(first + bs, stop)

    def shard_rows(self, n: int) -> tuple[int, int]:
        """This rank's contiguous part ``[first, last)`` of ``n`` rows split as evenly as
        possible (for evaluation)."""
        per, extra = divmod(n, self.size)
        first = self.rank * per + min(self.rank, extra)
        return first, first + per + (self.rank < extra)


def _host(array):
    """``array`` as a NumPy array (a CuPy one copied to the host)."""
    if isinstance(array, np.ndarray):
        return array
    return array.get()


def _like(value: np.ndarray, like):
    if isinstance(like, np.ndarray):
        return value
    import cupy

    return cupy.asarray(value)


def init(comm: Any = None, *, threads: Optional[int] = None,
         bucket_bytes: int = 4 << 20) -> Communicator:
    """Join the MPI job and return its :class:`Communicator`.

    Sets fastnn's thread count (``fastnn.set_num_threads``) so the ranks on one machine
    share its cores instead of oversubscribing them: ``threads`` if given, else
    ``OMP_NUM_THREADS`` if set, else the machine's cores divided by the ranks on it.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``.
    threads : int, optional
        Threads per rank.
    bucket_bytes : int
        See :class:`Communicator`.
    """
    communicator = Communicator(comm, bucket_bytes=bucket_bytes)
    import fastnn

    if threads is None and not os.environ.get("OMP_NUM_THREADS", "").isdigit():
        MPI = communicator.MPI
        local = communicator.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            on_this_machine = local.Get_size()
        finally:
            local.Free()
        threads = max(1, (os.cpu_count() or 1) // on_this_machine)
    if threads is not None:
        fastnn.set_num_threads(int(threads))
    return communicator
