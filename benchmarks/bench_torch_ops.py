"""The seed network in PyTorch with and without fastnn.torch modules, and a per-op table.

``python benchmarks/bench_torch_ops.py`` prints two Markdown tables:

* training (and inference) images/s of the seed convnet in *tuned* PyTorch
  (:mod:`fastnn.bench.torch_models`: channels-last, band-matmul LRN, fused Adam) against the
  same network, same weights, same optimizer step, with its layers replaced by
  :mod:`fastnn.torch.nn` modules (``ConvReluMaxPool2d``, ``LocalResponseNorm``,
  ``Linear(activation="tanh")``, ``Dropout``); the loss and Adam stay PyTorch's;
* forward + backward time of each layer at the seed shapes, PyTorch (channels-last) against
  fastnn.torch.

Both sides run in the same process with ``torch.set_num_threads`` and
``fastnn.set_num_threads`` at ``--threads`` (default 2). The variants take turns, round
by round (the order rotating, a pause before each turn so the previous one's worker
threads stop spinning), and the tables give the median over rounds and the median of the
per-round ratios: on a shared machine speed drifts by tens of percent over seconds.
Every variant flushes subnormals to zero (``torch.set_flush_denormal``,
``fastnn.set_flush_denormals``; fastnn.nn's Learner does so itself): on random labels with
weight decay the weights shrink until the numbers turn subnormal, after some 600 steps here,
and unflushed steps then take several times longer.
``--clock cpu --threads 1`` times the process's CPU time instead of the wall clock: on a
machine that other jobs keep busy, that measures the work each variant does.

Under pytest (``benchmarks/`` is part of the suite) ``test_smoke`` runs one step of each
variant at a small batch and checks that the two networks compute the same thing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the pytest smoke test says so and skips
    torch = None


def _torch_models():
    try:
        from fastnn.bench import torch_models
    except ImportError:  # older layout
        from fastnn import torch_models
    return torch_models


def seed_convnet_fastnn(seed: int = 0):
    """The tuned PyTorch seed network (same weights) built from fastnn.torch modules."""
    from fastnn.torch import nn as fnn

    tm = _torch_models()
    reference = tm.seed_convnet_torch("tuned", seed=seed)

    class SeedConvNetFastnn(torch.nn.Module):
        tuned = True  # channels-last input, as train_step_fn and to_input expect

        def __init__(self):
            super().__init__()
            self.drop = reference.drop
            self.dropout = fnn.Dropout(self.drop)
            self.conv1 = fnn.ConvReluMaxPool2d(1, 32, 3, padding=1)
            self.conv2 = fnn.ConvReluMaxPool2d(32, 64, 3, padding=1)
            size = 2 * tm.DEPTH_RADIUS + 1
            self.lrn = fnn.LocalResponseNorm(size, alpha=tm.LRN_ALPHA * size, beta=tm.LRN_BETA,
                                             k=tm.LRN_BIAS)
            self.fc1 = fnn.Linear(7 * 7 * 64, 128, activation="tanh")
            self.fc2 = fnn.Linear(128, 256, activation="tanh")
            self.fc3 = fnn.Linear(256, 10)

        def forward(self, x):
            x = self.lrn(self.conv1(x))
            x = self.lrn(self.conv2(x))
            x = x.permute(0, 2, 3, 1).flatten(1)  # a view of the NHWC memory
            x = self.dropout(self.fc1(x))
            x = self.dropout(self.fc2(x))
            return self.fc3(x)

    net = SeedConvNetFastnn()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("band")}
    net.load_state_dict(state)
    return net


def lenet5_fastnn(seed: int = 0):
    """LeNet-5 (:func:`fastnn.models.lenet5`) from fastnn.torch modules, with the weights of
    its tuned PyTorch twin (``torch_twin``)."""
    from fastnn import models
    from fastnn.torch import nn as fnn

    twin = _torch_models().torch_twin(models.lenet5(seed=seed), (28, 28, 1), "tuned")

    class LeNet5Fastnn(torch.nn.Module):
        tuned = True
        decay: dict = {}  # no weight decay, as the fastnn model

        def __init__(self):
            super().__init__()
            self.conv1 = fnn.ConvReluMaxPool2d(1, 6, 5, padding=2)
            self.conv2 = fnn.ConvReluMaxPool2d(6, 16, 5)
            self.fc1 = fnn.Linear(400, 120, activation="relu")
            self.fc2 = fnn.Linear(120, 84, activation="relu")
            self.fc3 = fnn.Linear(84, 10)

        def forward(self, x):
            x = self.conv2(self.conv1(x)).permute(0, 2, 3, 1).flatten(1)
            return self.fc3(self.fc2(self.fc1(x)))

    net = LeNet5Fastnn()
    with torch.no_grad():
        for mine, theirs in zip((net.conv1, net.conv2, net.fc1, net.fc2, net.fc3), twin.layers):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
    return net


def _batches(batch: int, count: int = 4):
    rng = np.random.default_rng(0)
    images = [rng.random((batch, 28, 28, 1), dtype=np.float32) for _ in range(count)]
    labels = [torch.from_numpy(rng.integers(0, 10, batch)) for _ in range(count)]
    return images, labels


def _cycle(call, batches):
    """A function of no arguments calling ``call(*batch)`` for the next of ``batches``."""
    state = {"i": 0}

    def run():
        i = state["i"] = (state["i"] + 1) % len(batches)
        call(*batches[i])
    return run


def _train_fn(net, batch, lr=None):
    tm = _torch_models()
    images, labels = _batches(batch)
    xs = [tm.to_input(x, net) for x in images]
    step = tm.train_step_fn(net) if lr is None else tm.train_step_fn(net, lr=lr)
    return _cycle(step, list(zip(xs, labels)))


def _infer_fn(net, batch):
    tm = _torch_models()
    images, _ = _batches(batch)
    xs = [tm.to_input(x, net) for x in images]
    return _cycle(tm.predict_fn(net), [(x,) for x in xs])


def _native_fn(batch, training, network="seed"):
    """The same network in fastnn itself (fastnn.nn, no PyTorch), for reference."""
    from fastnn import models

    model = models.seed_convnet(seed=0) if network == "seed" else models.lenet5(seed=0)
    lr = models.SEED_LR if network == "seed" else models.NETWORK_LR
    rng = np.random.default_rng(0)
    images = [rng.random((batch, 28, 28, 1), dtype=np.float32) for _ in range(4)]
    labels = [rng.integers(0, 10, batch) for _ in range(4)]
    if training:
        return _cycle(models.seed_learner(model.train(), lr=lr).fit_batch,
                      list(zip(images, labels)))
    return _cycle(model.eval(), [(x,) for x in images])


CLOCK = {"clock": time.perf_counter}


def interleaved(fns: dict, rounds: int, seconds: float, settle: float = 0.25) -> dict:
    """Per variant, the list of seconds per call, one per round (turns rotating)."""
    from fastnn.bench.timing import time_rounds

    return time_rounds(fns, rounds, seconds, settle=settle, clock=CLOCK["clock"])


def _median_ratio(num: list, den: list) -> float:
    from fastnn.bench.timing import median_ratio

    return median_ratio(num, den)


# --------------------------------------------------------------------------- per-op cases

def op_cases(batch: int, dtype=None):
    """(name, torch fwd+bwd, fastnn.torch fwd+bwd) at the seed network's shapes."""
    import fastnn.torch as ft

    tm = _torch_models()
    dtype = dtype or torch.float32
    cl = torch.channels_last
    g = torch.Generator().manual_seed(0)

    def rand(*shape, grad=True, channels_last=True):
        t = torch.randn(*shape, generator=g, dtype=dtype)
        if len(shape) == 4 and channels_last:
            t = t.contiguous(memory_format=cl)
        return t.requires_grad_(grad)

    def fwd_bwd(f, *inputs):
        out = f(*inputs)
        grad = torch.ones_like(out)

        def run():
            for t in inputs:
                t.grad = None
            f(*inputs).backward(grad)
        return run

    x1, x2 = rand(batch, 1, 28, 28), rand(batch, 32, 14, 14)
    w1, b1 = rand(32, 1, 3, 3), rand(32)
    w2, b2 = rand(64, 32, 3, 3), rand(64)
    w1cl, w2cl = (w.detach().contiguous(memory_format=cl).requires_grad_() for w in (w1, w2))
    h1, h2 = rand(batch, 32, 28, 28), rand(batch, 32, 14, 14)
    d1, d3 = rand(batch, 3136), rand(batch, 256)
    wf1, bf1, wf3, bf3 = rand(128, 3136), rand(128), rand(10, 256), rand(10)
    size = 2 * tm.DEPTH_RADIUS + 1
    lrn_t = torch.nn.LocalResponseNorm(size, alpha=tm.LRN_ALPHA * size, beta=tm.LRN_BETA,
                                       k=tm.LRN_BIAS)
    tuned = tm.seed_convnet_torch("tuned")  # its band-matmul LRN (the tuned network's)

    def torch_crp(x, w, b):
        return F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)

    return [
        ("conv1 28x28x1->32", fwd_bwd(lambda x, w, b: F.conv2d(x, w, b, padding=1), x1, w1cl, b1),
         fwd_bwd(lambda x, w, b: ft.conv2d(x, w, b, padding=1), x1, w1, b1)),
        ("conv2 14x14x32->64", fwd_bwd(lambda x, w, b: F.conv2d(x, w, b, padding=1), x2, w2cl,
                                       b2),
         fwd_bwd(lambda x, w, b: ft.conv2d(x, w, b, padding=1), x2, w2, b2)),
        ("conv1+relu+pool", fwd_bwd(torch_crp, x1, w1cl, b1),
         fwd_bwd(lambda x, w, b: ft.conv2d_relu_max_pool2d(x, w, b, padding=1), x1, w1, b1)),
        ("conv2+relu+pool", fwd_bwd(torch_crp, x2, w2cl, b2),
         fwd_bwd(lambda x, w, b: ft.conv2d_relu_max_pool2d(x, w, b, padding=1), x2, w2, b2)),
        ("max_pool2d 28x28x32", fwd_bwd(lambda x: F.max_pool2d(x, 2), h1),
         fwd_bwd(lambda x: ft.max_pool2d(x, 2), h1)),
        ("LRN 14x14x32 (nn.LocalResponseNorm)", fwd_bwd(lrn_t, h2),
         fwd_bwd(lambda x: ft.local_response_norm(x, size, tm.LRN_ALPHA * size, tm.LRN_BETA,
                                                  tm.LRN_BIAS), h2)),
        ("LRN 14x14x32 (tuned band matmul)", fwd_bwd(tuned._norm, h2),
         fwd_bwd(lambda x: ft.local_response_norm(x, size, tm.LRN_ALPHA * size, tm.LRN_BETA,
                                                  tm.LRN_BIAS), h2)),
        ("dense 3136->128 tanh", fwd_bwd(lambda x, w, b: torch.tanh(F.linear(x, w, b)), d1, wf1,
                                        bf1),
         fwd_bwd(lambda x, w, b: ft.linear(x, w, b, "tanh"), d1, wf1, bf1)),
        ("dense 256->10", fwd_bwd(F.linear, d3, wf3, bf3),
         fwd_bwd(lambda x, w, b: ft.linear(x, w, b), d3, wf3, bf3)),
    ]


# --------------------------------------------------------------------------- report

def machine() -> str:
    import fastnn
    from fastnn.bench.machine import cpu_model

    model = cpu_model()
    return (f"{model}, {torch.get_num_threads()} torch threads / {fastnn.get_num_threads()} "
            f"fastnn threads, subnormals flushed; torch {torch.__version__}, "
            f"fastnn {fastnn.__version__}, NumPy {np.__version__}, "
            f"Python {platform.python_version()}")


def main(argv=None) -> None:
    import fastnn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per turn")
    parser.add_argument("--no-ops", action="store_true", help="skip the per-op table")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--network", choices=["seed", "lenet5"], default="seed",
                        help="lenet5: fastnn.models.lenet5 and its tuned PyTorch twin")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: the process's CPU time, which a busy machine's other "
                             "processes do not inflate (meaningful with --threads 1)")
    args = parser.parse_args(argv)
    CLOCK["clock"] = time.perf_counter if args.clock == "wall" else time.process_time

    torch.set_num_threads(args.threads)
    fastnn.set_num_threads(args.threads)
    # Random labels and weight decay drive this network's weights towards zero until its
    # numbers turn subnormal, and then every variant but fastnn.nn (whose Learner flushes
    # them) slows down several-fold, the fastest first (they reach that step count first):
    # all of them run flushed, PyTorch's own ops and fastnn's kernels under fastnn.torch.
    torch.set_flush_denormal(True)
    fastnn.set_flush_denormals(True)
    tm = _torch_models()
    print(machine() + f"; {args.clock} clock, {args.rounds} rounds; {args.network} network")
    print()
    print("| case | tuned PyTorch | PyTorch + fastnn.torch | ratio (median of rounds) "
          "| fastnn.nn alone (no PyTorch) |")
    print("|---|---|---|---|---|")
    for training in (True, False):
        if not training and args.no_inference:
            continue
        for batch in args.batches:
            if args.network == "seed":
                nets, lr = (tm.seed_convnet_torch("tuned"), seed_convnet_fastnn()), None
            else:
                from fastnn import models

                nets = (tm.torch_twin(models.lenet5(seed=0), (28, 28, 1), "tuned"),
                        lenet5_fastnn())
                lr = models.NETWORK_LR
            make = (lambda net, b, lr=lr: _train_fn(net, b, lr)) if training else _infer_fn
            fns = {"torch": make(nets[0], batch), "fastnn": make(nets[1], batch),
                   "native": _native_fn(batch, training, args.network)}
            t = interleaved(fns, args.rounds, args.seconds)
            ips = {k: batch / statistics.median(v) for k, v in t.items()}
            ratio = _median_ratio(t["torch"], t["fastnn"])
            kind = "training" if training else "inference"
            print(f"| {kind} bs{batch} | {ips['torch']:,.0f} img/s | {ips['fastnn']:,.0f} img/s "
                  f"| **{ratio:.2f}x** | {ips['native']:,.0f} img/s |", flush=True)
    if args.no_ops:
        return
    batch = args.batches[0]
    print()
    print(f"Forward + backward per layer, batch {batch}, float32 (median of rounds):")
    print()
    print("| op | PyTorch channels-last | fastnn.torch | speed-up |")
    print("|---|---|---|---|")
    for name, torch_fn, fastnn_fn in op_cases(batch):
        t = interleaved({"torch": torch_fn, "fastnn": fastnn_fn}, args.rounds,
                        args.seconds / 4, settle=0.1)
        med = {k: statistics.median(v) * 1e6 for k, v in t.items()}
        ratio = _median_ratio(t["torch"], t["fastnn"])
        print(f"| {name} | {med['torch']:,.0f} us | {med['fastnn']:,.0f} us | "
              f"**{ratio:.2f}x** |", flush=True)


# --------------------------------------------------------------------------- pytest smoke

def test_smoke():
    import pytest

    if torch is None:
        pytest.skip("PyTorch is not installed: fastnn.torch needs it")
    tm = _torch_models()
    reference, mine = tm.seed_convnet_torch("tuned"), seed_convnet_fastnn()
    x = tm.to_input(np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32), mine)
    with torch.no_grad():
        expected = reference.eval()(x)
        got = mine.eval()(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for fn in (_train_fn(reference, 8), _train_fn(mine, 8), _infer_fn(mine, 8),
               _native_fn(8, True)):
        fn()
    from fastnn import models  # LeNet-5 from fastnn.torch modules computes its twin's logits
    twin, lenet = tm.torch_twin(models.lenet5(seed=0), (28, 28, 1), "tuned"), lenet5_fastnn()
    with torch.no_grad():
        torch.testing.assert_close(lenet.eval()(x), twin.eval()(x), rtol=1e-4, atol=1e-5)
    _train_fn(lenet, 8, models.NETWORK_LR)()
    _native_fn(8, True, "lenet5")()
    for _, torch_fn, fastnn_fn in op_cases(2):
        torch_fn()
        fastnn_fn()


if __name__ == "__main__":
    main()
