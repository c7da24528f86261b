"""The benchmark cases shared by ``fastnn bench`` and ``benchmarks/`` (pytest-benchmark).

A :class:`BenchCase` names one workload (an op at one shape) and, for each implementation
(``numpy``: the plain NumPy a user would write; ``fastnn-<backend>``; ``torch``), a
factory that prepares inputs and returns a zero-argument callable to time. Ratios are
always against ``numpy`` measured in the same run, with every library pinned to the same
thread count.

Example
-------
>>> [c.name for c in activation_cases(sizes=(10,))][:2]
['relu/10', 'relu_backward/10']
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from fastnn import _compat, backends, ops

Factory = Callable[[], Callable[[], object]]


@dataclasses.dataclass
class BenchCase:
    name: str
    group: str
    impls: dict[str, Factory]
    bytes_moved: float = 0.0  # for memory-bound ops: GB/s against measured bandwidth
    flops: float = 0.0        # for compute-bound ops: GFLOP/s against measured peak
    peak_scale: float = 1.0   # the case's FMA peak over the float32 one (float64: 0.5)
    images: int = 0           # end-to-end cases: images per call, printed as images/s


def _fastnn_impls(make: Callable[[str], Callable[[], object]]) -> dict[str, Factory]:
    """One ``fastnn-<backend>`` entry per available CPU-side backend (reference excluded:
    it is the plain NumPy row)."""
    impls = {}
    for name in backends.available():
        if name in ("reference", "cuda"):
            continue

        def factory(name=name):
            fn = make(name)

            def run():
                with backends.use(name):
                    return fn()
            run()  # warm up (numba compiles here, not in the timing)
            return run
        impls[f"fastnn-{name}"] = factory
    return impls


_NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu_backward": lambda dy, y: dy * (y > 0),
    "sigmoid_backward": lambda dy, y: dy * y * (1 - y),
    "tanh_backward": lambda dy, y: dy * (1 - y * y),
}


def activation_cases(sizes=(100_000, 1_000_000, 10_000_000), dtype=np.float32):
    """relu/sigmoid/tanh forward and backward at each size, out= preallocated for fastnn."""
    cases = []
    torch, _ = _compat.torch()
    for size in sizes:
        for name in ("relu", "sigmoid", "tanh"):
            for backward in (False, True):
                op = f"{name}_backward" if backward else name
                rng = np.random.default_rng(0)
                x = rng.standard_normal(size).astype(dtype)
                dy = rng.standard_normal(size).astype(dtype)
                y = _NUMPY_ACTIVATIONS[name](x).astype(dtype)
                args = (dy, y) if backward else (x,)
                out = np.empty(size, dtype)

                def make_fastnn(_backend, op=op, args=args, out=out):
                    fn = getattr(ops, op)
                    return lambda: fn(*args, out=out)

                impls: dict[str, Factory] = {
                    "numpy": lambda op=op, args=args: (
                        lambda: _NUMPY_ACTIVATIONS[op](*args)),
                }
                impls.update(_fastnn_impls(make_fastnn))
                if torch is not None:
                    impls["torch"] = _torch_activation(torch, name, backward, args)
                cases.append(BenchCase(
                    f"{op}/{size}", "activations", impls,
                    bytes_moved=x.itemsize * size * (3 if backward else 2)))
    return cases


def _torch_activation(torch, name, backward, args):
    def factory():
        tensors = [torch.from_numpy(a) for a in args]
        out = torch.empty_like(tensors[0])
        if not backward:
            x = tensors[0]
            if name == "relu":
                return lambda: torch.clamp_min(x, 0, out=out)
            fn = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[name]
            return lambda: fn(x, out=out)
        # What autograd runs for these: the fused *_backward kernels of ATen.
        dy, y = tensors
        if name == "relu":
            return lambda: torch.ops.aten.threshold_backward(dy, y, 0)
        if name == "sigmoid":
            return lambda: torch.ops.aten.sigmoid_backward(dy, y)
        return lambda: torch.ops.aten.tanh_backward(dy, y)
    return factory


def _shape_tag(shape):
    return "x".join(map(str, shape))


def pool_lrn_cases(pool_shapes=((64, 28, 28, 32), (64, 14, 14, 64)),
                   lrn_shapes=((64, 14, 14, 32), (64, 7, 7, 64)), dtype=np.float32):
    """max_pool2d (kernel 2) and LRN (TF defaults) forward and backward on NHWC float32.

    ``numpy`` is the reference backend's code; ``torch`` is plain NCHW
    (``F.max_pool2d``, ``F.local_response_norm`` with alpha scaled by the window to match
    TensorFlow) and ``torch-cl`` the tuned channels-last form (channels_last max-pool; LRN
    as a matmul of x*x with a 0/1 band matrix over channels).
    """
    torch, _ = _compat.torch()
    rng = np.random.default_rng(0)
    cases = []
    for shape in pool_shapes:
        x = rng.standard_normal(shape).astype(dtype)
        with backends.use("reference"):
            y, argmax = ops.max_pool2d(x, kernel=2)
        dy = rng.standard_normal(y.shape).astype(dtype)
        forward = _numpy_and_fastnn(lambda x=x: ops.max_pool2d(x, kernel=2))
        backward = _numpy_and_fastnn(
            lambda dy=dy, a=argmax, xs=x.shape: ops.max_pool2d_backward(dy, a, xs))
        _add_torch(forward, backward, torch, _torch_max_pool, x, dy)
        size = x.itemsize * x.size
        cases.append(BenchCase(f"max_pool2d/{_shape_tag(shape)}", "pool", forward,
                               bytes_moved=size * 1.75))  # x in; y and int64 argmax out
        cases.append(BenchCase(f"max_pool2d_backward/{_shape_tag(shape)}", "pool", backward,
                               bytes_moved=size * 1.75))
    for shape in lrn_shapes:
        x = rng.standard_normal(shape).astype(dtype)
        with backends.use("reference"):
            y, scale = ops.local_response_norm(x)
        dy = rng.standard_normal(shape).astype(dtype)
        forward = _numpy_and_fastnn(lambda x=x: ops.local_response_norm(x))
        backward = _numpy_and_fastnn(
            lambda args=(dy, x, y, scale): ops.local_response_norm_backward(*args))
        _add_torch(forward, backward, torch, _torch_lrn, x, dy)
        size = x.itemsize * x.size
        cases.append(BenchCase(f"local_response_norm/{_shape_tag(shape)}", "lrn", forward,
                               bytes_moved=size * 3))
        cases.append(BenchCase(f"local_response_norm_backward/{_shape_tag(shape)}", "lrn",
                               backward, bytes_moved=size * 5))
    return cases


def _numpy_and_fastnn(call: Callable[[], object]) -> dict[str, Factory]:
    """``call`` as ``numpy`` (on the reference backend) and on every fastnn backend."""
    impls = {"numpy": lambda: _with_reference(call)}
    impls.update(_fastnn_impls(lambda _backend: call))
    return impls


def _add_torch(forward, backward, torch, make, x, dy) -> None:
    """PyTorch's plain (``torch``) and channels-last (``torch-cl``) forms, where it exists."""
    if torch is not None:
        for name, channels_last in (("torch", False), ("torch-cl", True)):
            forward[name] = make(torch, x, dy, channels_last, backward=False)
            backward[name] = make(torch, x, dy, channels_last, backward=True)


def _with_reference(fn):
    def run():
        with backends.use("reference"):
            return fn()
    return run


def _torch_max_pool(torch, x, dy, channels_last, *, backward):
    def factory():
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
        if not backward:
            return lambda: torch.nn.functional.max_pool2d(xt, 2, return_indices=True)
        _, indices = torch.nn.functional.max_pool2d(xt, 2, return_indices=True)
        dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
        # What autograd runs for max_pool2d's backward.
        return lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            dyt, xt, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)
    return factory


def _torch_lrn(torch, x, dy, channels_last, *, backward, depth_radius=5, bias=1.0,
               alpha=1e-4, beta=0.75):
    size = 2 * depth_radius + 1

    def factory():
        if not channels_last:
            # torch averages the window: alpha * size gives TensorFlow's sum.
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_(backward)
            yt = torch.nn.functional.local_response_norm(xt, size, alpha=alpha * size,
                                                         beta=beta, k=bias)
            if not backward:
                return lambda: torch.nn.functional.local_response_norm(
                    xt, size, alpha=alpha * size, beta=beta, k=bias)
            dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()
            return lambda: torch.autograd.grad(yt, xt, dyt, retain_graph=True)
        c = x.shape[-1]
        band = torch.from_numpy(
            (np.abs(np.subtract.outer(np.arange(c), np.arange(c))) <= depth_radius)
            .astype(x.dtype))
        x2 = torch.from_numpy(x).reshape(-1, c)

        def forward():
            scale = torch.addmm(torch.full((1,), bias, dtype=x2.dtype), x2 * x2, band,
                                alpha=alpha)
            return x2 * scale.pow(-beta), scale
        if not backward:
            return forward
        y2, scale = forward()
        dy2 = torch.from_numpy(dy).reshape(-1, c)

        def backward_fn():
            spread = (dy2 * y2 / scale) @ band
            return dy2 * scale.pow(-beta) - (2 * alpha * beta) * x2 * spread
        return backward_fn
    return factory


# ------------------------------------------------------------------ convolution and GEMM

def _nchw(torch, a, channels_last):
    """An NHWC NumPy array as an NCHW-shaped tensor (``channels_last``: NHWC memory)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=fmt)


def conv_cases(shapes=(((64, 28, 28, 1), 32), ((64, 14, 14, 32), 64)), kernel=3,
               dtype=np.float32):
    """conv2d forward, backward-data and backward-weights ("same" padding, stride 1) on NHWC
    input with HWIO weights, at the seed network's two convolutions (batch 64), and the
    forward with relu and a 2x2 max-pool (``conv2d_relu_max_pool2d``; torch: the three
    functional calls, the pool with indices as a training forward keeps them).

    ``numpy`` is the reference backend (im2col + one matmul); ``torch`` is ``F.conv2d`` on
    NCHW tensors and its backward passes through ``aten.convolution_backward`` (what autograd
    runs) with one output selected; ``torch-cl`` is the same on channels-last tensors. Inputs
    are made inside the factories, so listing the cases costs nothing.
    """
    torch, _ = _compat.torch()
    cases = []
    for x_shape, c_out in shapes:
        n, h, w, c_in = x_shape
        w_shape = (kernel, kernel, c_in, c_out)
        flops = 2.0 * n * h * w * c_out * kernel * kernel * c_in

        def inputs(x_shape=x_shape, w_shape=w_shape):
            rng = np.random.default_rng(0)
            x = rng.standard_normal(x_shape).astype(dtype)
            weights = (rng.standard_normal(w_shape) * np.sqrt(2.0 / np.prod(w_shape[:3])))
            bias = rng.standard_normal(w_shape[3]) * 0.1
            dy = rng.standard_normal(x_shape[:3] + w_shape[3:]).astype(dtype)
            return x, weights.astype(dtype), bias.astype(dtype), dy

        def make(op, inputs=inputs):
            x, weights, bias, dy = inputs()
            if op == "conv2d":
                out = np.empty(dy.shape, dtype)
                return lambda: ops.conv2d(x, weights, bias, padding="same", out=out)
            if op == "conv2d_relu_max_pool2d":
                return lambda: ops.conv2d_relu_max_pool2d(x, weights, bias, padding="same")
            if op == "conv2d_backward_data":
                out = np.empty(x.shape, dtype)
                return lambda: ops.conv2d_backward_data(dy, weights, x.shape, padding="same",
                                                        out=out)
            out = np.empty(weights.shape, dtype)
            return lambda: ops.conv2d_backward_weights(dy, x, weights.shape, padding="same",
                                                       out=out)

        tag = f"{_shape_tag(x_shape)}-{c_out}"
        for op in ("conv2d", "conv2d_backward_data", "conv2d_backward_weights",
                   "conv2d_relu_max_pool2d"):
            impls: dict[str, Factory] = {
                "numpy": lambda op=op, make=make: _with_reference(make(op))}
            impls.update(_fastnn_impls(lambda _b, op=op, make=make: make(op)))
            if torch is not None:
                for name, cl in (("torch", False), ("torch-cl", True)):
                    impls[name] = _torch_conv(torch, inputs, op, kernel // 2, cl)
            cases.append(BenchCase(f"{op}/{tag}", "conv", impls, flops=flops))
    return cases


def _torch_conv(torch, inputs, op, pad, channels_last):
    def factory():
        x, weights, bias, dy = inputs()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        xt = _nchw(torch, x, channels_last)
        wt = torch.from_numpy(weights).permute(3, 2, 0, 1).contiguous(memory_format=fmt)
        bt = torch.from_numpy(bias)
        if op == "conv2d":
            return lambda: torch.nn.functional.conv2d(xt, wt, bt, padding=pad)
        if op == "conv2d_relu_max_pool2d":
            functional = torch.nn.functional
            return lambda: functional.max_pool2d(
                functional.relu(functional.conv2d(xt, wt, bt, padding=pad)), 2,
                return_indices=True)
        dyt = _nchw(torch, dy, channels_last)
        mask = [op == "conv2d_backward_data", op == "conv2d_backward_weights", False]
        return lambda: torch.ops.aten.convolution_backward(
            dyt, xt, wt, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, mask)
    return factory


SEED_DENSE = ((7 * 7 * 64, 128), (128, 256), (256, 10))


def gemm_cases(square=(256, 512, 1024, 2048), batch=64, dense=SEED_DENSE, dtype=np.float32):
    """Matrix products ``op(a) @ op(b)``, named ``gemm/<NN|TN|NT>/<m>x<k>x<n>`` (with a
    ``/float64`` suffix for that dtype).

    Square ``n x n`` products, then the seed network's dense layers at ``batch``: the forward
    ``x @ W`` (NN), the weight gradient ``x.T @ dy`` (TN) and the data gradient ``dy @ W.T``
    (NT). ``numpy`` is ``a @ b`` on the (transposed) views, fastnn ``ops.gemm(..., out=)``,
    ``torch`` ``torch.mm(..., out=)`` on the same views.
    """
    shapes = [((n, n), (n, n), False, False) for n in square]
    for inputs, outputs in dense:
        x, w, dy = (batch, inputs), (inputs, outputs), (batch, outputs)
        shapes += [(x, w, False, False), (x, dy, True, False), (dy, w, False, True)]
    return [_gemm_case(a, b, ta, tb, dtype) for a, b, ta, tb in shapes]


def _gemm_case(a_shape, b_shape, trans_a, trans_b, dtype):
    m, k = a_shape[::-1] if trans_a else a_shape
    n = b_shape[0] if trans_b else b_shape[1]

    def inputs():
        rng = np.random.default_rng(0)
        a = rng.standard_normal(a_shape).astype(dtype)
        b = rng.standard_normal(b_shape).astype(dtype)
        return a, b, np.empty((m, n), dtype)

    def make_numpy():
        a, b, _ = inputs()
        a, b = (a.T if trans_a else a), (b.T if trans_b else b)
        return lambda: a @ b

    def make_fastnn(_backend):
        a, b, out = inputs()
        return lambda: ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=out)

    impls: dict[str, Factory] = {"numpy": make_numpy}
    impls.update(_fastnn_impls(make_fastnn))
    torch, _ = _compat.torch()
    if torch is not None:
        def make_torch():
            a, b, out = (torch.from_numpy(t) for t in inputs())
            a, b = (a.t() if trans_a else a), (b.t() if trans_b else b)
            return lambda: torch.mm(a, b, out=out)
        impls["torch"] = make_torch
    form = ("T" if trans_a else "N") + ("T" if trans_b else "N")
    f64 = np.dtype(dtype) == np.float64
    return BenchCase(f"gemm/{form}/{m}x{k}x{n}" + ("/float64" if f64 else ""), "gemm", impls,
                     flops=2.0 * m * k * n, peak_scale=0.5 if f64 else 1.0)


# ------------------------------------------------------------------ end-to-end training

def seed_flops_per_image(training: bool) -> float:
    """Multiply-add FLOPs of the seed convnet per 28x28 image (convolutions and dense layers;
    pools, LRN and the elementwise ops are left out). Training is forward + backward-weights
    + backward-data, less the first convolution's data gradient, which nothing needs."""
    conv = [2.0 * 28 * 28 * 32 * 9 * 1, 2.0 * 14 * 14 * 64 * 9 * 32]
    dense = [2.0 * i * o for i, o in SEED_DENSE]
    forward = sum(conv) + sum(dense)
    return 3 * forward - conv[0] if training else forward


def _seed_batches(batch, count=4):
    """``count`` batches of MNIST-like images (uniform [0, 1)) with random labels: nothing to
    memorise, so the loss stays near log(10) and no denormals creep in while timing."""
    return _network_batches((28, 28, 1), batch, count)


def _cycle(fn, *sequences):
    """A zero-argument callable calling ``fn`` on the next item of each sequence in turn."""
    state = [0]

    def run():
        i = state[0] = (state[0] + 1) % len(sequences[0])
        return fn(*(s[i] for s in sequences))
    return run


def _fastnn_seed(batch, training):
    from fastnn import models

    model = models.seed_convnet(seed=0)
    images, labels = _seed_batches(batch)
    if training:
        return _cycle(models.seed_learner(model.train()).fit_batch, images, labels)
    model.eval()
    return _cycle(model, images)


def _torch_seed(form, batch, training):
    def factory():
        import torch

        from fastnn.bench import torch_models

        net = torch_models.seed_convnet_torch(form, seed=0)
        images, labels = _seed_batches(batch)
        xs = [torch_models.to_input(x, net) for x in images]
        if training:
            return _cycle(torch_models.train_step_fn(net), xs,
                          [torch.from_numpy(y) for y in labels])
        return _cycle(torch_models.predict_fn(net), xs)
    return factory


def _peer_seed(engine, batch, training):
    def factory():
        import fastnn
        from fastnn.bench import peers

        images, labels = _seed_batches(batch)
        if engine == "jax":
            if training:
                return _cycle(peers.jax_seed_train_step(), images, labels)
            return _cycle(peers.jax_seed_predict(), images)
        return _cycle(peers.onnx_seed_predict(fastnn.get_num_threads()), images)
    return factory


def training_cases(batch_sizes=(32, 64, 128, 256), infer_batch_sizes=(1, 32, 64, 128, 256)):
    """The seed convnet end to end, as images/s: ``seed_train/bs<B>`` is one training step
    (forward, loss, backward, Adam update, dropout on) on a batch of ``B`` 28x28 images,
    ``seed_infer/bs<B>`` the forward in evaluation mode.

    ``numpy`` is the fastnn network on the reference backend; ``fastnn-<backend>`` the same
    network on each backend; ``torch-plain`` and ``torch-tuned`` the same network (same
    initial weights, hyperparameters) in PyTorch, see :mod:`fastnn.bench.torch_models`;
    ``jax`` (training and inference) and ``onnxruntime`` (inference) the same network on
    those engines where they are installed, see :mod:`fastnn.bench.peers`. Each factory
    builds a fresh model (no pre-training) and cycles over four random batches.
    """
    from fastnn.bench import peers

    torch, _ = _compat.torch()
    engines = peers.available()
    cases = []
    for training, kind in ((True, "train"), (False, "infer")):
        for batch in batch_sizes if training else infer_batch_sizes:
            impls: dict[str, Factory] = {
                "numpy": lambda b=batch, t=training: _with_reference(_fastnn_seed(b, t))}
            impls.update(_fastnn_impls(lambda _b, b=batch, t=training: _fastnn_seed(b, t)))
            if torch is not None:
                for form in ("plain", "tuned"):
                    impls[f"torch-{form}"] = _torch_seed(form, batch, training)
            for engine in engines:
                if training and engine == "onnxruntime":
                    continue
                impls[engine] = _peer_seed(engine, batch, training)
            cases.append(BenchCase(
                f"seed_{kind}/bs{batch}", "training" if training else "inference", impls,
                flops=batch * seed_flops_per_image(training), images=batch))
    return cases


# The networks beyond the seed: (builder in fastnn.models, one image's (h, w, c), training
# batch, inference batch).
NETWORKS = {"lenet5": ("lenet5", (28, 28, 1), 64, 256),
            "cifar": ("cifar_convnet", (32, 32, 3), 32, 32)}


def network_flops_per_image(model, input_shape, training: bool) -> float:
    """Multiply-adds x 2 of a Sequential's convolutions and dense layers for one image of
    ``input_shape``; training counts three passes (forward, backward-data, backward-weights)
    less the first layer's backward-data, which no one needs."""
    shape, passes = tuple(input_shape), []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            shape = tuple(layer._output_shape((1, *shape))[1:])
            kh, kw = layer.kernel_size
            passes.append(2.0 * shape[0] * shape[1] * shape[2] * kh * kw * layer.in_channels)
        elif kind == "Linear":
            passes.append(2.0 * layer.inputs * layer.outputs)
            shape = (layer.outputs,)
        elif hasattr(layer, "_output_shape"):
            shape = tuple(layer._output_shape((1, *shape))[1:])
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
    forward = sum(passes)
    return 3 * forward - passes[0] if training else forward


def _network_batches(input_shape, batch, count=4):
    """``count`` batches of ``input_shape`` images (uniform [0, 1)) with random labels."""
    rng = np.random.default_rng(batch)
    images = rng.random((count, batch, *input_shape), dtype=np.float32)
    return images, rng.integers(0, 10, (count, batch))


def _fastnn_network(name, batch, training):
    from fastnn import models

    builder, input_shape, _, _ = NETWORKS[name]
    model = getattr(models, builder)(seed=0)
    images, labels = _network_batches(input_shape, batch)
    if training:
        learner = models.seed_learner(model.train(), lr=models.NETWORK_LR)
        return _cycle(learner.fit_batch, images, labels)
    model.eval()
    return _cycle(model, images)


def _torch_network(name, form, batch, training):
    def factory():
        import torch

        from fastnn import models
        from fastnn.bench import torch_models

        builder, input_shape, _, _ = NETWORKS[name]
        net = torch_models.torch_twin(getattr(models, builder)(seed=0), input_shape, form)
        images, labels = _network_batches(input_shape, batch)
        xs = [torch_models.to_input(x, net) for x in images]
        if training:
            return _cycle(torch_models.train_step_fn(net, lr=models.NETWORK_LR), xs,
                          [torch.from_numpy(y) for y in labels])
        return _cycle(torch_models.predict_fn(net), xs)
    return factory


def network_cases(names=tuple(NETWORKS)):
    """LeNet-5 and the CIFAR-shaped VGG network (:func:`fastnn.models.lenet5`,
    :func:`fastnn.models.cifar_convnet`) end to end, as images/s: ``<net>_train/bs<B>`` one
    training step (forward, loss, backward, Adam at lr 0.001), ``<net>_infer/bs<B>`` the
    forward in evaluation mode; the same implementations as :func:`training_cases`
    (``torch-*`` the network's :func:`fastnn.bench.torch_models.torch_twin`, same weights)."""
    from fastnn import models

    torch, _ = _compat.torch()
    cases = []
    for name in names:
        builder, input_shape, train_batch, infer_batch = NETWORKS[name]
        model = getattr(models, builder)(seed=0)
        for training, kind, batch in ((True, "train", train_batch),
                                      (False, "infer", infer_batch)):
            impls: dict[str, Factory] = {
                "numpy": lambda n=name, b=batch, t=training: _with_reference(
                    _fastnn_network(n, b, t))}
            impls.update(_fastnn_impls(
                lambda _b, n=name, b=batch, t=training: _fastnn_network(n, b, t)))
            if torch is not None:
                for form in ("plain", "tuned"):
                    impls[f"torch-{form}"] = _torch_network(name, form, batch, training)
            cases.append(BenchCase(
                f"{name}_{kind}/bs{batch}", "training" if training else "inference", impls,
                flops=batch * network_flops_per_image(model, input_shape, training),
                images=batch))
    return cases


def _numpy_adam(p, g, m, v, *, step, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam as a NumPy user writes it: one temporary per line."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    p -= lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
    g[...] = 0


def elementwise_cases(dtype=np.float32):
    """The one-pass kernels at the seed network's sizes: Adam on the largest weight
    (dense 3136x128) and on 1e6 values, dropout on a dense activation, softmax
    cross-entropy on the logits, and the conv1 bias gradient."""
    cases = []
    torch, _ = _compat.torch()
    rng = np.random.default_rng(0)
    for size in (3136 * 128, 1_000_000):
        state = [rng.standard_normal(size).astype(dtype) for _ in range(3)]
        state.append(rng.random(size).astype(dtype))

        # Every impl first restores the gradient (a copy, timed for all alike): the
        # updates zero it, and with a zero gradient m and v decay into denormals within
        # a few hundred calls, which would time the FPU's denormal path instead.
        def make_fastnn(_backend, state=state):
            p, g, m, v = (a.copy() for a in state)

            def run():
                np.copyto(g, state[1])
                ops.adam_update(p, g, m, v, step=3, lr=0.01)
            return run

        def make_numpy(state=state):
            p, g, m, v = (a.copy() for a in state)

            def run():
                np.copyto(g, state[1])
                _numpy_adam(p, g, m, v, step=3)
            return run

        impls: dict[str, Factory] = {"numpy": make_numpy}
        impls.update(_fastnn_impls(make_fastnn))
        if torch is not None:
            impls["torch"] = _torch_adam(torch, state)
        cases.append(BenchCase(f"adam_update/{size}", "optimizer", impls,
                               bytes_moved=9 * size * np.dtype(dtype).itemsize))

    x = rng.standard_normal((64, 256)).astype(dtype)
    out = np.empty_like(x)
    impls = {"numpy": lambda: (lambda: (lambda mask: (x * mask / 0.8, mask))(
        np.random.default_rng(1).random(x.shape) < 0.8))}
    impls.update(_fastnn_impls(lambda _b: lambda: ops.dropout(x, keep_prob=0.8, seed=7,
                                                             out=out)))
    cases.append(BenchCase("dropout/64x256", "elementwise", impls,
                           bytes_moved=x.nbytes * 2 + x.size))

    logits = rng.standard_normal((64, 10)).astype(dtype)
    labels = rng.integers(0, 10, 64)

    def numpy_sce():
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_probs[np.arange(64), labels].mean(), np.exp(log_probs)

    impls = {"numpy": lambda: numpy_sce}
    impls.update(_fastnn_impls(lambda _b: lambda: ops.softmax_cross_entropy(logits, labels)))
    cases.append(BenchCase("softmax_cross_entropy/64x10", "loss", impls,
                           bytes_moved=2 * logits.nbytes))

    dy = rng.standard_normal((64, 28, 28, 32)).astype(dtype)
    db = np.empty(32, dtype)
    impls = {"numpy": lambda: (lambda: dy.sum(axis=(0, 1, 2)))}
    impls.update(_fastnn_impls(lambda _b: lambda: ops.bias_backward(dy, out=db)))
    cases.append(BenchCase("bias_backward/64x28x28x32", "elementwise", impls,
                           bytes_moved=dy.nbytes))
    return cases


def _torch_adam(torch, state):
    def factory():
        p, g, m, v = (torch.from_numpy(a.copy()) for a in state)
        g0 = torch.from_numpy(state[1])
        step = torch.tensor(3.0)

        def run():
            g.copy_(g0)
            # torch.optim.Adam's fused CPU path, on one parameter: the fastest torch form.
            torch._fused_adam_([p], [g], [m], [v], [], [step], lr=0.01, beta1=0.9,
                               beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False,
                               maximize=False)
        return run
    return factory


def all_cases() -> list[BenchCase]:
    return (activation_cases() + elementwise_cases() + pool_lrn_cases() + conv_cases()
            + gemm_cases() + gemm_cases(dtype=np.float64) + training_cases() + network_cases())
