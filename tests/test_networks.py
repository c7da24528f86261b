"""LeNet-5 and the CIFAR-shaped network (fastnn.models) train, and their PyTorch twins
(fastnn.bench.torch_models.torch_twin, the benchmark's peers) compute and train as they do."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import bench, models

NETWORKS = [("lenet5", models.lenet5, (28, 28, 1)),
            ("cifar", lambda **kw: models.cifar_convnet(widths=(8, 16, 32), **kw), (32, 32, 3))]


def _batch(input_shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *input_shape), dtype=np.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("name, build, input_shape", NETWORKS, ids=[n[0] for n in NETWORKS])
def test_the_network_learns_a_batch(name, build, input_shape):
    x, y = _batch(input_shape)
    learner = models.seed_learner(build(seed=0).train(), lr=models.NETWORK_LR)
    losses = [learner.fit_batch(x, y) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.isfinite(losses).all()


def test_lenet5_float64_and_its_flop_count():
    model = models.lenet5(seed=1, dtype=np.float64)
    assert model(np.zeros((2, 28, 28, 1))).dtype == np.float64
    # conv1 28*28*6*25, conv2 10*10*16*150, dense 400*120 + 120*84 + 84*10; x2 per MAC
    forward = 2.0 * (28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10)
    assert bench.network_flops_per_image(model, (28, 28, 1), training=False) == forward
    assert bench.network_flops_per_image(model, (28, 28, 1), training=True) == (
        3 * forward - 2.0 * 28 * 28 * 6 * 25)


def test_cifar_convnet_refuses_bad_widths():
    with pytest.raises(ValueError, match="widths must be three positive ints"):
        models.cifar_convnet(widths=(8, 16))


@pytest.mark.parametrize("form", ["plain", "tuned"])
@pytest.mark.parametrize("name, build, input_shape", NETWORKS, ids=[n[0] for n in NETWORKS])
def test_the_torch_twin_computes_and_trains_as_fastnn(name, build, input_shape, form):
    torch = pytest.importorskip("torch")
    from fastnn.bench import torch_models as tm

    x, y = _batch(input_shape)
    fast = build(seed=0)
    twin = tm.torch_twin(fast, input_shape, form)
    with torch.no_grad():
        got = twin.eval()(tm.to_input(x, twin)).numpy()
    np.testing.assert_allclose(got, fast.eval()(x), rtol=1e-4, atol=1e-5)

    learner = models.seed_learner(fast.train(), lr=models.NETWORK_LR)
    step = tm.train_step_fn(twin, lr=models.NETWORK_LR)
    ours = [learner.fit_batch(x, y) for _ in range(4)]
    theirs = [step(tm.to_input(x, twin), torch.from_numpy(y)) for _ in range(4)]
    np.testing.assert_allclose(theirs, ours, rtol=2e-3)


def test_torch_twin_refuses_layers_it_has_no_twin_for():
    pytest.importorskip("torch")
    from fastnn import nn
    from fastnn.bench import torch_models as tm

    with pytest.raises(ValueError, match=r"layer 1 \(LocalResponseNorm\): no PyTorch twin"):
        tm.torch_twin(nn.Sequential(nn.Conv2d(1, 2, 3), nn.LocalResponseNorm()), (8, 8, 1))
    with pytest.raises(ValueError, match="form must be 'plain' or 'tuned'"):
        tm.torch_twin(models.lenet5(), (28, 28, 1), "fast")
