"""The cuda backend end to end: training agrees with the CPU, wrong array types and CUDA
errors surface as clear Python exceptions. Op-by-op parity with the reference and the
contract checks are in test_parity.py and test_contract.py, which the cuda backend joins
on a GPU machine."""

from __future__ import annotations

import numpy as np
import pytest

from fastnn import backends, models, nn, ops

if "cuda" not in backends.available():
    pytest.skip("no CUDA device", allow_module_level=True)

import cupy  # noqa: E402 - only importable usefully where a device is present

from fastnn import _compat  # noqa: E402
from fastnn.data import load_mnist  # noqa: E402

f32 = np.float32


def _to_gpu(model):
    """Move a model's parameters (and their zero gradients) to the GPU, in place."""
    model.to("cuda")
    assert all(isinstance(p.tensor, cupy.ndarray) and isinstance(p.gradient, cupy.ndarray)
               for p in model.parameters)
    return model


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_eval, y_eval) = load_mnist()
    return x[:1024], y[:1024].astype(np.int64), x_eval[:500], y_eval[:500].astype(np.int64)


def test_cupy_arrays_default_to_the_cuda_backend():
    x = cupy.asarray(np.array([-1.0, 2.0], f32))
    assert backends.default_for(x).name == "cuda"
    y = ops.relu(x)
    assert isinstance(y, cupy.ndarray)
    np.testing.assert_array_equal(y.get(), [0.0, 2.0])


def test_numpy_arrays_to_the_cuda_backend_get_a_clear_type_error():
    with backends.use("cuda"), pytest.raises(
            TypeError, match="relu: the cuda backend takes CuPy arrays, got numpy.ndarray"):
        ops.relu(np.ones(3, f32))
    logits = cupy.zeros((2, 3), f32)
    with backends.use("cuda"), pytest.raises(
            TypeError, match="softmax_cross_entropy: the cuda backend takes CuPy arrays"):
        ops.softmax_cross_entropy(logits, np.array([0, 1]))


def test_the_binding_rejects_host_arrays_naming_the_op():
    native, _ = _compat.cuda_native()
    with pytest.raises(TypeError, match="relu: x must be a CUDA device array"):
        native.activation(native.RELU, np.ones(3, f32), cupy.empty(3, f32),
                          cupy.cuda.get_current_stream().ptr)


class _Reshaped:
    """A device array interface claiming another shape over the same (small) buffer."""

    def __init__(self, like, shape):
        self.__cuda_array_interface__ = dict(like.__cuda_array_interface__, shape=shape,
                                             strides=None)


def test_cuda_errors_surface_as_runtime_errors_naming_the_op():
    """A launch the GPU refuses (grid too tall: 70000 tiles of output channels) is a
    RuntimeError naming the op, and the device stays usable afterwards."""
    native, _ = _compat.cuda_native()
    channels = 70_000 * 64
    x = cupy.zeros((1, 1, 1, 1), f32)
    buffer = cupy.zeros(16, f32)
    w = _Reshaped(buffer, (1, 1, 1, channels))
    y = _Reshaped(buffer, (1, 1, 1, channels))
    with pytest.raises(RuntimeError, match=r"^conv2d: CUDA error"):
        native.conv2d(x, w, None, (1, 1), (0, 0), (1, 1), 0, y,
                      cupy.cuda.get_current_stream().ptr)
    np.testing.assert_array_equal(ops.relu(cupy.asarray([-1.0, 1.0])).get(), [0.0, 1.0])


def test_one_step_gradients_match_the_cpu(digits):
    """Forward, loss and every parameter gradient of the seed network on one batch."""
    x, y = digits[0][:64], digits[1][:64]
    cpu_model = models.seed_convnet(seed=3)
    gpu_model = _to_gpu(models.seed_convnet(seed=3))

    out_cpu, back_cpu = cpu_model.forward(x)
    loss_cpu, grad_cpu = nn.softmax_cross_entropy(out_cpu, y)
    back_cpu(grad_cpu)
    with backends.use("cuda"):
        out_gpu, back_gpu = gpu_model.forward(cupy.asarray(x))
        loss_gpu, grad_gpu = nn.softmax_cross_entropy(out_gpu, cupy.asarray(y))
        back_gpu(grad_gpu)

    assert float(loss_gpu) == pytest.approx(float(loss_cpu), rel=1e-4)
    np.testing.assert_allclose(out_gpu.get(), out_cpu, rtol=1e-3, atol=1e-4)
    for p_cpu, p_gpu in zip(cpu_model.parameters, gpu_model.parameters):
        scale = float(np.abs(p_cpu.gradient).max()) or 1.0
        np.testing.assert_allclose(p_gpu.gradient.get(), p_cpu.gradient, rtol=1e-3,
                                   atol=1e-4 * scale)


def test_training_the_seed_network_matches_the_cpu(digits):
    """A thousand digits, two epochs: the same losses and accuracy within float32 noise
    (initial weights and dropout masks are identical; only rounding differs, and it grows
    over training: cpu and reference differ by ~10% in the second epoch's val_loss)."""
    x, y, x_eval, y_eval = digits
    histories = {}
    for name in ("cpu", "cuda"):
        model = models.seed_convnet(seed=0)
        if name == "cuda":
            _to_gpu(model)
            data = [cupy.asarray(a) for a in (x, y, x_eval, y_eval)]
        else:
            data = [x, y, x_eval, y_eval]
        learner = models.seed_learner(model)
        with backends.use(name if name == "cuda" else backends.default_for().name):
            learner.fit(data[0], data[1], epochs=2, bs=64, validation=(data[2], data[3]),
                        progress=False, seed=0)
        histories[name] = learner.history
    cpu, gpu = histories["cpu"], histories["cuda"]
    np.testing.assert_allclose(gpu["loss"], cpu["loss"], rtol=0.05)
    np.testing.assert_allclose(gpu["val_loss"], cpu["val_loss"], rtol=0.25)
    assert abs(gpu["val_accuracy"][-1] - cpu["val_accuracy"][-1]) <= 0.05
    assert gpu["val_accuracy"][-1] > 0.7  # it learned (cpu: 0.92 after these two epochs)


def test_cli_trains_evaluates_and_predicts_on_the_gpu(tmp_path, capsys):
    """`fastnn train/evaluate/predict --backend cuda`: data and model moved to the device,
    the model saved from it and loaded back."""
    from fastnn.cli import main as cli

    out = tmp_path / "run"
    small = ["--epochs", "1", "--limit", "256", "--batch-size", "64", "--no-progress"]
    assert cli(["train", *small, "--backend", "cuda", "--out", str(out)]) == 0
    assert "backend cuda" in capsys.readouterr().out
    assert cli(["evaluate", str(out / "model.npz"), "--limit", "256", "--backend", "cuda"]) == 0
    digit = tmp_path / "digit.npy"
    np.save(digit, load_mnist()[1][0][0, :, :, 0])
    assert cli(["predict", str(out / "model.npz"), str(digit), "--backend", "cuda"]) == 0
    assert "class" in capsys.readouterr().out

