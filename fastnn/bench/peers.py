"""The seed convnet on the other engines a user would pick: ONNX Runtime (inference) and
JAX (training and inference), for the benchmarks.

Both run the network of :func:`fastnn.models.seed_convnet` from *the same weights*, so
their logits match fastnn's in evaluation mode (``tests/test_bench_peers.py`` checks it).

* **ONNX Runtime** runs the network as an ONNX graph built from ONNX's own operators
  (:func:`seed_onnx_model`: Conv, Relu, MaxPool, LRN, Gemm, Tanh; ONNX Runtime has a kernel
  for each, and its graph optimiser fuses Conv + Relu), graph optimisations at their highest
  level, ``intra_op_num_threads`` = the benchmark's thread count. (PyTorch's ONNX export of
  the same network is no better: its ``LocalResponseNorm`` exports as pad + average-pool
  ops, the band-matmul form as transposes around a matmul.)
* **JAX** is the network written as a JAX user would, NHWC: ``lax.conv_general_dilated``
  with HWIO weights, ``lax.reduce_window`` max-pools, the LRN as ``x * (bias + alpha *
  (x*x) @ band) ** -beta`` (XLA fuses it), ``jax.jit`` over the forward and over the whole
  training step (loss, gradient, optax's Adam with the seed's L2 on the conv weights,
  dropout from ``jax.random``). JAX takes its thread count at start-up only
  (``XLA_FLAGS=--xla_cpu_multi_thread_eigen`` / ``intra_op_parallelism_threads``), so
  :func:`jax_threads_env` gives the environment to start the benchmark with.

Both engines are optional: :func:`available` says which are importable.

Example
-------
>>> sorted(available()) in ([], ["jax"], ["onnxruntime"], ["jax", "onnxruntime"])
True
"""

from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np

from fastnn import models

__all__ = ["available", "jax_threads_env", "seed_weights", "onnx_seed_predict",
           "jax_seed_predict", "seed_onnx_model", "jax_seed_train_step"]

DEPTH_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA = 5, 1.0, 1e-4, 0.75


def available() -> list[str]:
    """The peer engines importable here ("onnxruntime" also needs onnx to build the graph,
    "jax" optax for Adam)."""
    found = []
    if all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx")):
        found.append("onnxruntime")
    if all(importlib.util.find_spec(m) for m in ("jax", "optax")):
        found.append("jax")
    return found


def jax_threads_env(threads: int) -> dict[str, str]:
    """Environment variables that pin XLA's CPU client to ``threads`` threads; they must be
    set before ``import jax``."""
    return {"XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={threads}",
            "OMP_NUM_THREADS": str(threads)}


def seed_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """The seed convnet's parameters: ``conv1/conv2`` HWIO weights and biases, ``fc1..fc3``
    (in, out) weights (fc1's rows in NHWC flatten order) and biases."""
    model = models.seed_convnet(seed=seed)
    layers = [layer for layer in model if type(layer).__name__ in ("Conv2d", "Linear")]
    names = ("conv1", "conv2", "fc1", "fc2", "fc3")
    weights = {}
    for name, layer in zip(names, layers):
        weights[f"{name}.w"] = np.array(layer.weights.tensor)
        weights[f"{name}.b"] = np.array(layer.bias.tensor)
    return weights


# ---- ONNX Runtime ---------------------------------------------------------------------------

def seed_onnx_model(seed: int = 0) -> bytes:
    """The seed network as a serialized ONNX model (opset 17): NHWC float32 input ``x`` of
    any batch size, ``logits`` out; ONNX's Conv, Relu, MaxPool, LRN, Gemm and Tanh, in NCHW
    between two transposes (ONNX Runtime's CPU kernels work in NCHW)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = seed_weights(seed)
    size = 2 * DEPTH_RADIUS + 1
    def oihw(a):
        return np.ascontiguousarray(a.transpose(3, 2, 0, 1))

    inits = [numpy_helper.from_array(oihw(w["conv1.w"]), "w1"),
             numpy_helper.from_array(w["conv1.b"], "b1"),
             numpy_helper.from_array(oihw(w["conv2.w"]), "w2"),
             numpy_helper.from_array(w["conv2.b"], "b2")]
    for i in (1, 2, 3):
        inits += [numpy_helper.from_array(w[f"fc{i}.w"], f"fw{i}"),
                  numpy_helper.from_array(w[f"fc{i}.b"], f"fb{i}")]
    node = helper.make_node
    nodes = [node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2])]
    last = "x_nchw"
    for i in (1, 2):
        nodes += [
            node("Conv", [last, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[3, 3],
                 pads=[1, 1, 1, 1]),
            node("Relu", [f"c{i}"], [f"r{i}"]),
            node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]),
            # ONNX's alpha is averaged over the window; TensorFlow's (the seed's) is summed.
            node("LRN", [f"p{i}"], [f"n{i}"], size=size, alpha=LRN_ALPHA * size, beta=LRN_BETA,
                 bias=LRN_BIAS),
        ]
        last = f"n{i}"
    nodes += [node("Transpose", [last], ["n_nhwc"], perm=[0, 2, 3, 1]),
              node("Flatten", ["n_nhwc"], ["flat"], axis=1),
              node("Gemm", ["flat", "fw1", "fb1"], ["g1"]), node("Tanh", ["g1"], ["t1"]),
              node("Gemm", ["t1", "fw2", "fb2"], ["g2"]), node("Tanh", ["g2"], ["t2"]),
              node("Gemm", ["t2", "fw3", "fb3"], ["logits"])]
    graph = helper.make_graph(
        nodes, "seed_convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="fastnn.bench")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_seed_predict(threads: int, *, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> logits`` for NHWC float32 images ``x``, on an ONNX Runtime session of
    :func:`seed_onnx_model` (graph optimisations at their highest level, ``threads``
    intra-op threads, one inter-op thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(seed_onnx_model(seed), options,
                                   providers=["CPUExecutionProvider"])

    def predict(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": np.ascontiguousarray(x, np.float32)})[0]
    return predict


# ---- JAX ------------------------------------------------------------------------------------

def _jax_forward(jnp, lax):
    band = {c: jnp.asarray(np.abs(np.subtract.outer(np.arange(c), np.arange(c))) <= DEPTH_RADIUS,
                           jnp.float32) for c in (32, 64)}

    def lrn(x):
        scale = LRN_BIAS + LRN_ALPHA * (x * x) @ band[x.shape[-1]]
        return x * scale ** -LRN_BETA

    def conv_relu_pool(x, w, b):
        y = lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jnp.maximum(y + b, 0)
        return lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")

    def forward(params, x, keep=None):
        """``keep``: None in evaluation; in training the two dropout masks (1/keep_prob or 0)."""
        x = lrn(conv_relu_pool(x, params["conv1.w"], params["conv1.b"]))
        x = lrn(conv_relu_pool(x, params["conv2.w"], params["conv2.b"]))
        x = x.reshape(x.shape[0], -1)
        x = jnp.tanh(x @ params["fc1.w"] + params["fc1.b"])
        if keep is not None:
            x = x * keep[0]
        x = jnp.tanh(x @ params["fc2.w"] + params["fc2.b"])
        if keep is not None:
            x = x * keep[1]
        return x @ params["fc3.w"] + params["fc3.b"]
    return forward


def jax_seed_predict(*, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x) -> logits`` (a NumPy array, computed to completion) for NHWC images."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    params = {k: jnp.asarray(v) for k, v in seed_weights(seed).items()}
    forward = jax.jit(_jax_forward(jnp, lax))

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(forward(params, jnp.asarray(x)))
    return predict


def jax_seed_train_step(*, seed: int = 0, lr: float = models.SEED_LR,
                        weight_decay: float = models.SEED_WEIGHT_DECAY,
                        keep_prob: float = models.SEED_KEEP_PROB
                        ) -> Callable[[np.ndarray, np.ndarray], float]:
    """``step(x, labels) -> loss``: one jitted training step as ``fastnn.models.seed_learner``
    takes it (softmax cross-entropy averaged over the batch, Adam, L2 ``weight_decay * W``
    added to the conv weights' gradient, dropout keep ``keep_prob`` after the two hidden
    dense layers)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    forward = _jax_forward(jnp, lax)
    params = {k: jnp.asarray(v) for k, v in seed_weights(seed).items()}
    decayed = {k: k in ("conv1.w", "conv2.w") for k in params}
    optimizer = optax.chain(optax.add_decayed_weights(weight_decay, mask=decayed),
                            optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8))
    state = {"params": params, "opt": optimizer.init(params), "key": jax.random.PRNGKey(seed)}

    def loss_fn(p, x, labels, keep):
        logits = forward(p, x, keep)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def step(p, opt, key, x, labels):
        key, k1, k2 = jax.random.split(key, 3)
        keep = (jax.random.bernoulli(k1, keep_prob, (x.shape[0], 128)) / keep_prob,
                jax.random.bernoulli(k2, keep_prob, (x.shape[0], 256)) / keep_prob)
        loss, grads = jax.value_and_grad(loss_fn)(p, x, labels, keep)
        updates, opt = optimizer.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt, key, loss

    def run(x: np.ndarray, labels: np.ndarray) -> float:
        state["params"], state["opt"], state["key"], loss = step(
            state["params"], state["opt"], state["key"], jnp.asarray(x), jnp.asarray(labels))
        return float(loss)
    return run
