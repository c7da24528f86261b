"""Programs that tests/test_distributed.py runs under ``mpiexec -n N``: one function per
case, chosen by the first argument; each prints ``OK <case>`` on rank 0 when its checks hold
(an AssertionError on any rank ends the job through Learner.fit's abort or a non-zero exit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import fastnn
from fastnn import distributed, nn


def small_convnet(seed: int, *, dropout: bool = False) -> nn.Sequential:
    """A network with every kind of layer whose gradient is summed across ranks: convs
    (with L2 weight decay), the fused conv + relu + max-pool, LRN, dense layers."""
    rng = np.random.default_rng(seed)
    layers = [nn.Conv2d(1, 4, 3, padding="same", activation="relu", weight_decay=1e-3,
                        rng=rng),
              nn.MaxPool2d(2), nn.LocalResponseNorm(depth_radius=2),
              nn.Conv2d(4, 6, 3, padding="same", activation="relu", rng=rng),
              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 16, rng=rng), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(0.8, seed=seed))
    layers.append(nn.Linear(16, 3, rng=rng))
    return nn.Sequential(*layers)


def data(n: int = 100, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    Y = rng.integers(0, 3, n)
    return X, Y


class InSync(nn.Callback):
    """Asserts at the end of every epoch that every rank holds the same parameters."""

    def __init__(self, comm):
        self.comm, self.checked = comm, 0

    def on_epoch_end(self, learner, epoch, logs):
        assert self.comm.parameters_in_sync(learner.model.parameters), \
            f"parameters differ across ranks after epoch {epoch + 1}"
        self.checked += 1


def case_same_as_one_process(comm) -> None:
    """N ranks x bs 8 follow one process with bs 8N over the same order: parameters (to
    float32 rounding), the history, and the parameters stay identical on every rank.
    100 samples: the last global batch is short, and for N >= 2 a rank's shard is empty."""
    X, Y = data()
    Xv, Yv = data(30, seed=2)
    bs, epochs = 8, 3
    sync = InSync(comm)
    learner = nn.Learner(small_convnet(comm.rank), nn.softmax_cross_entropy, nn.Adam(lr=0.01))
    learner.fit(X, Y, epochs, bs, validation=(Xv, Yv), progress=False, seed=3,
                callbacks=[sync], distributed=comm)
    assert sync.checked == epochs
    if comm.is_root:
        single = nn.Learner(small_convnet(0), nn.softmax_cross_entropy, nn.Adam(lr=0.01))
        single.fit(X, Y, epochs, bs * comm.size, validation=(Xv, Yv), progress=False, seed=3)
        for (name, p), (_, q) in zip(learner.model.named_parameters(),
                                     single.model.named_parameters()):
            np.testing.assert_allclose(p.tensor, q.tensor, rtol=2e-4, atol=2e-5, err_msg=name)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(learner.history[key], single.history[key],
                                       rtol=1e-4, atol=1e-5, err_msg=key)
        print(f"OK same_as_one_process ranks={comm.size}", flush=True)


def case_dropout_masks_differ(comm) -> None:
    """With Dropout, each rank draws its own masks (rank 0's stream as in one process),
    and the parameters still stay identical across ranks."""
    X, Y = data(64)
    sync = InSync(comm)
    learner = nn.Learner(small_convnet(0, dropout=True), nn.softmax_cross_entropy,
                         nn.SGD(0.05))
    drop = [layer for layer in learner.model.layers if isinstance(layer, nn.Dropout)][0]
    learner.fit(X, Y, 2, 8, progress=False, seed=0, callbacks=[sync], distributed=comm)
    draws = comm.comm.allgather(int(drop._rng.integers(2**62)))
    assert len(set(draws)) == comm.size, draws
    if comm.is_root:
        print("OK dropout_masks_differ", flush=True)


def case_only_rank_0_writes(comm, folder: str) -> None:
    """Checkpoints come from rank 0 alone; a later run resumes them on another number of
    ranks (this case is run on 2 ranks, then resumed on 1 and on 3)."""
    X, Y = data(48)
    learner = nn.Learner(small_convnet(0), nn.softmax_cross_entropy, nn.Adam(lr=0.01))
    if not comm.is_root:
        def refuse(path):
            raise AssertionError(f"rank {comm.rank} wrote {path}")
        learner.save_checkpoint = refuse
    learner.fit(X, Y, 2, 8, progress=False, seed=0, callbacks=[nn.Checkpoint(folder)],
                distributed=comm)
    if comm.is_root:
        Path(folder, "params.json").write_text(json.dumps(
            [float(p.tensor.sum()) for p in learner.model.parameters]))
        print("OK only_rank_0_writes", flush=True)


def case_resume(comm, folder: str) -> None:
    X, Y = data(48)
    sync = InSync(comm)
    learner = nn.Learner(small_convnet(7), nn.softmax_cross_entropy, nn.Adam(lr=0.01))
    learner.fit(X, Y, 4, 8, progress=False, resume=f"{folder}/checkpoint-last.npz",
                callbacks=[sync], distributed=comm)
    assert len(learner.history["loss"]) == 4 and sync.checked == 2
    if comm.is_root:
        print(f"OK resume ranks={comm.size}", flush=True)


def case_rank_raises(comm) -> None:
    """Rank 1 fails in the middle of training: the job must end, saying so (no hang)."""
    class Fail(nn.Callback):
        def on_epoch_end(self, learner, epoch, logs):
            if comm.rank == 1:
                raise RuntimeError("disk on fire")

    X, Y = data(32)
    learner = nn.Learner(small_convnet(0), nn.softmax_cross_entropy, nn.SGD(0.1))
    learner.fit(X, Y, 3, 8, progress=False, seed=0, callbacks=[Fail()], distributed=comm)
    print(f"rank {comm.rank} finished although rank 1 failed", flush=True)


def case_rank_dies(comm) -> None:
    """Rank 1 is killed in the middle of an epoch (as by the OOM killer)."""
    import os
    import signal

    class Die(nn.Callback):
        def on_epoch_end(self, learner, epoch, logs):
            if comm.rank == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    X, Y = data(32)
    learner = nn.Learner(small_convnet(0), nn.softmax_cross_entropy, nn.SGD(0.1))
    learner.fit(X, Y, 3, 8, progress=False, seed=0, callbacks=[Die()], distributed=comm)
    print(f"rank {comm.rank} finished although rank 1 died", flush=True)


def case_diverged(comm) -> None:
    """A NaN on one rank's shard stops every rank with TrainingDiverged at the same step,
    before the update, without a hang; the other ranks name the rank."""
    X, Y = data(32)
    X[21] = np.nan  # with seed 0's order this row lands on some rank in epoch 1
    learner = nn.Learner(small_convnet(0), nn.softmax_cross_entropy, nn.SGD(0.1))
    try:
        learner.fit(X, Y, 1, 4, progress=False, seed=0, shuffle=False, distributed=comm)
    except nn.TrainingDiverged as exc:
        messages = comm.comm.gather(str(exc))
        steps = comm.comm.gather(exc.step)
    else:
        raise AssertionError("a NaN batch did not stop training")
    assert comm.parameters_in_sync(learner.model.parameters)
    if comm.is_root:
        assert len(set(steps)) == 1, steps
        # row 21 is in global batch 3 (rows 16-23 with 2 ranks x bs 4): rank 1's shard
        assert any("input batch itself holds 64 NaN/inf" in m for m in messages), messages
        assert any("not finite on rank 1" in m for m in messages), messages
        print("OK diverged", flush=True)


def main() -> None:
    # FASTNN_TEST_BUCKET_BYTES: small buckets, so the gradient goes in many allreduces
    comm = distributed.init(threads=1, bucket_bytes=int(
        __import__("os").environ.get("FASTNN_TEST_BUCKET_BYTES", 4 << 20)))
    fastnn.set_num_threads(1)
    case = sys.argv[1]
    globals()[f"case_{case}"](comm, *sys.argv[2:])


if __name__ == "__main__":
    main()
