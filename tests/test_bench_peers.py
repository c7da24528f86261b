"""The benchmark's peer engines run the seed network fastnn runs: ONNX Runtime's and JAX's
logits match fastnn's in evaluation mode, from the same weights, and JAX's training step
takes the same steps as fastnn's Learner (dropout off, so the two draw nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import models
from fastnn.bench import peers


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)


def _fastnn_logits(x):
    return models.seed_convnet(seed=0).eval()(x)


@pytest.mark.skipif("onnxruntime" not in peers.available(),
                    reason="onnxruntime and onnx are not both installed")
def test_onnx_runtime_computes_the_seed_network():
    x, _ = _images()
    got = peers.onnx_seed_predict(1)(x)
    np.testing.assert_allclose(got, _fastnn_logits(x), rtol=1e-4, atol=1e-5)
    assert peers.onnx_seed_predict(1)(x[:1]).shape == (1, 10)  # the batch axis is dynamic


@pytest.mark.skipif("jax" not in peers.available(), reason="jax and optax are not installed")
def test_jax_computes_the_seed_network_and_trains_as_fastnn_does():
    x, y = _images()
    np.testing.assert_allclose(peers.jax_seed_predict()(x), _fastnn_logits(x), rtol=1e-4, atol=1e-5)

    model = models.seed_convnet(seed=0, keep_prob=1.0).train()
    learner = models.seed_learner(model)
    convs = [model[0].weights.tensor, model[3].weights.tensor]

    def data_loss():  # fastnn's loss includes the L2 term, weight_decay / 2 * |W|^2
        l2 = 0.5 * models.SEED_WEIGHT_DECAY * sum(float((w.astype(np.float64) ** 2).sum())
                                                 for w in convs)
        return learner.fit_batch(x, y) - l2
    step = peers.jax_seed_train_step(keep_prob=1.0)
    ours = [data_loss() for _ in range(4)]
    theirs = [step(x, y) for _ in range(4)]
    # Step 0 is the same forward; later ones follow Adam with the L2 gradient on the conv
    # weights.
    np.testing.assert_allclose(theirs, ours, rtol=2e-3)
    assert theirs[-1] < theirs[0]


def test_the_seed_weights_are_the_fastnn_models():
    w = peers.seed_weights(0)
    assert w["conv1.w"].shape == (3, 3, 1, 32) and w["fc1.w"].shape == (7 * 7 * 64, 128)
    model = models.seed_convnet(seed=0)
    assert np.array_equal(w["conv1.w"], model[0].weights.tensor)
    env = peers.jax_threads_env(1)
    assert "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
