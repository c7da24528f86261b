"""Data-parallel training over MPI (fastnn.distributed), run as a user runs it: each case of
tests/mpi_cases.py under ``mpiexec -n N`` (MPICH from the test extra's wheel), with a
timeout, so a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="needs mpi4py and an MPI (both in the test extra: "
                    "pip install '.[test]')")

from fastnn import distributed, nn  # noqa: E402

CASES = Path(__file__).with_name("mpi_cases.py")
TIMEOUT = 120


def mpiexec() -> str:
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                         f"{os.environ.get('PATH', '')}")
    assert found, ("no mpiexec on PATH or beside this Python: the test extra installs MPICH "
                   "(pip install '.[test]')")
    return found


def run(ranks: int, *args: str, check: bool = True, env=None) -> subprocess.CompletedProcess:
    command = [sys.executable, *args] if ranks == 0 else \
        [mpiexec(), "-n", str(ranks), sys.executable, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("ranks", [0, 2, 3])
def test_n_ranks_follow_one_process_with_n_times_the_batch(ranks):
    """Same parameters and history (to float32 rounding) as one process with batch N x bs;
    parameters identical on every rank after every epoch; 0 ranks = no launcher (an MPI
    singleton of one rank)."""
    out = run(ranks, str(CASES), "same_as_one_process").stdout
    assert f"OK same_as_one_process ranks={max(ranks, 1)}" in out


def test_gradients_in_many_small_buckets():
    out = run(2, str(CASES), "same_as_one_process",
              env={"FASTNN_TEST_BUCKET_BYTES": "1024"}).stdout  # 3 allreduces a step
    assert "OK same_as_one_process ranks=2" in out


def test_dropout_masks_differ_across_ranks():
    assert "OK dropout_masks_differ" in run(2, str(CASES), "dropout_masks_differ").stdout


def test_only_rank_0_writes_and_checkpoints_resume_on_other_rank_counts(tmp_path):
    assert "OK only_rank_0_writes" in run(2, str(CASES), "only_rank_0_writes",
                                          str(tmp_path)).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-best.npz", "checkpoint-last.npz", "params.json"]
    for ranks in (0, 3):  # one process, then three ranks, from the 2-rank checkpoint
        assert f"OK resume ranks={max(ranks, 1)}" in run(ranks, str(CASES), "resume",
                                                          str(tmp_path)).stdout


def test_a_rank_that_raises_ends_the_job_with_its_message():
    result = run(2, str(CASES), "rank_raises", check=False)
    assert result.returncode != 0
    assert ("fastnn.distributed: rank 1 of 2: Learner.fit failed: RuntimeError: disk on "
            "fire; ending all ranks") in result.stderr
    assert "finished although" not in result.stdout


def test_a_rank_that_dies_ends_the_job():
    result = run(2, str(CASES), "rank_dies", check=False)
    assert result.returncode != 0
    assert "finished although" not in result.stdout


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step():
    assert "OK diverged" in run(2, str(CASES), "diverged").stdout


def test_mpirun_fastnn_train(tmp_path):
    """`mpiexec -n 2 fastnn train`: one report (rank 0's), the per-rank and global batch,
    the files written once, and the accuracy of a single process within a point."""
    common = ["-m", "fastnn", "train", "--epochs", "2", "--limit", "3000", "--no-progress"]
    result = run(2, *common, "--out", str(tmp_path / "two"))
    out = result.stdout
    assert out.count("final: validation accuracy") == 1
    assert ("distributed over 2 MPI ranks: a batch of 64 per rank, 128 per step, 1 thread(s) "
            "per rank; the learning rate is not scaled") in out
    history = json.loads((tmp_path / "two" / "history.json").read_text())
    assert (history["ranks"], history["global_batch_size"]) == (2, 128)
    single = run(0, *common, "--batch-size", "128", "--out", str(tmp_path / "one"))
    assert "distributed" not in single.stdout
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    # The ranks draw other dropout masks than one process does, and a different summation
    # order (1 thread per rank) moves the trajectory too: after two short epochs the two
    # runs' accuracies have been seen 0.1 to 3.3 points apart, in either direction. What
    # must hold is that the distributed run reaches the single process's accuracy.
    two_acc, one_acc = history["val_accuracy"][-1], one["val_accuracy"][-1]
    assert one_acc > 0.85 and two_acc >= one_acc - 0.02, (
        history["val_accuracy"], one["val_accuracy"])


# ---------------------------------------------------------------------- without a launcher

@pytest.mark.parametrize("variables, expected", [
    ({}, 0),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, 4),
    ({"PMI_SIZE": "2"}, 2),
    ({"SLURM_NTASKS": "8"}, 0),  # an allocation, not an srun step
    ({"SLURM_NTASKS": "8", "SLURM_STEP_ID": "0"}, 8),
])
def test_launched_by_mpi_reads_the_launchers_environment(monkeypatch, variables, expected):
    for name in (*distributed._SIZE_VARIABLES, "SLURM_NTASKS", "SLURM_STEP_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert distributed.launched_by_mpi() == expected


class FakeComm:
    """The sharding arithmetic alone (no MPI): rank ``rank`` of ``size``."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    shard = distributed.Communicator.shard
    shard_rows = distributed.Communicator.shard_rows


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("n, bs", [(100, 8), (7, 4), (64, 16), (1, 3)])
def test_shards_are_disjoint_and_cover_every_batch(size, n, bs):
    ranks = [FakeComm(r, size) for r in range(size)]
    seen = []
    for start in range(0, n, bs * size):
        stop = min(start + bs * size, n)
        parts = [c.shard(start, stop, bs) for c in ranks]
        for first, last in parts:
            seen.extend(range(first, last))
            assert start <= first <= last <= stop and last - first <= bs
    assert seen == list(range(n))
    rows = [c.shard_rows(n) for c in ranks]
    assert [i for first, last in rows for i in range(first, last)] == list(range(n))
    assert max(b - a for a, b in rows) - min(b - a for a, b in rows) <= 1


def test_fastnn_train_under_a_launcher_without_mpi4py_says_how_to_install(tmp_path):
    """A launcher's environment but no mpi4py importable: one clear line, exit 2."""
    blocker = tmp_path / "mpi4py.py"
    blocker.write_text("raise ImportError('No module named mpi4py')\n")
    env = {**os.environ, "PMI_SIZE": "2", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "fastnn", "train", "--epochs", "1",
                             "--out", str(tmp_path / "run")], capture_output=True, text=True,
                            timeout=TIMEOUT, env=env)
    assert result.returncode == 2
    assert "fastnn train: error: started by an MPI launcher, but fastnn.distributed needs " \
           "mpi4py and an MPI library: pip install 'fastnn[mpi]'" in result.stderr


def test_bucket_bytes_is_checked():
    with pytest.raises(ValueError, match="bucket_bytes must be an int >= 1024"):
        distributed.Communicator(bucket_bytes=10)


def test_learner_is_root_without_distribution():
    learner = nn.Learner(nn.Linear(2, 1, rng=0), nn.mse_loss, nn.SGD(0.1))
    assert learner.is_root and learner.distributed is None
    learner.fit(np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), 1, 2,
                progress=False)
    assert learner.distributed is None


def test_readme_python_example_runs_under_mpiexec(tmp_path):
    """README's "Training on several machines" Python block, as written but for one epoch
    on a 2,000-digit slice instead of twenty on 8,000 (the slice through `x[:2000]`)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Training on several machines", 1)[1].split("\n## ", 1)[0]
    (block,) = __import__("re").findall(r"```python\n(.*?)```", section, __import__("re").S)
    assert "epochs=20" in block and "learner.fit(x, y," in block
    block = block.replace("epochs=20", "epochs=1").replace("learner.fit(x, y,",
                                                           "learner.fit(x[:2000], y[:2000],")
    block += "\nif comm.is_root:\n    print('val_accuracy', learner.history['val_accuracy'][-1])\n"
    script = tmp_path / "train.py"
    script.write_text(block)
    out = run(2, str(script)).stdout
    assert float(out.split("val_accuracy")[1]) > 0.6, out  # 16 steps of 64 (chance: 0.1)
