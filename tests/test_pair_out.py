"""``out=(y, aux)`` for the ops that return two arrays (max_pool2d, local_response_norm,
conv2d_relu_max_pool2d): on every backend the pair receives exactly what a call without it
returns, the very arrays come back, and a bad pair is refused before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from support import ALL_BACKEND_PARAMS, to_backend, to_numpy

from fastnn import backends, ops

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
W = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
B = rng.standard_normal(4).astype(np.float32)

CASES = {
    # op: (args, kwargs, y shape, aux dtype)
    "max_pool2d": ((X,), {"kernel": 2}, (2, 3, 3, 3), np.int64),
    "max_pool2d-nchw": ((X.transpose(0, 3, 1, 2).copy(),),
                        {"kernel": 3, "stride": 1, "layout": "NCHW"}, (2, 3, 4, 4), np.int64),
    "local_response_norm": ((X,), {"depth_radius": 1}, X.shape, np.float32),
    "local_response_norm-nchw": ((X.transpose(0, 3, 1, 2).copy(),), {"layout": "NCHW"},
                                 (2, 3, 6, 6), np.float32),
    "conv2d_relu_max_pool2d": ((X, W, B), {"padding": 1}, (2, 3, 3, 4), np.int64),
    "conv2d_relu_max_pool2d-nobias": ((X, W), {}, (2, 2, 2, 4), np.int64),
}


def _op(case):
    return getattr(ops, case.split("-")[0])


@pytest.mark.parametrize("name", ALL_BACKEND_PARAMS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_out_pair_receives_the_result(name, case):
    args, kwargs, shape, aux_dtype = CASES[case]
    args = to_backend(name, args)
    with backends.use(name):
        want = _op(case)(*args, **kwargs)
        xp = backends.get(name).xp
        out = (xp.full(shape, np.nan, np.float32), xp.full(shape, -7, aux_dtype))
        got = _op(case)(*args, **kwargs, out=out)
    assert got[0] is out[0] and got[1] is out[1]
    np.testing.assert_array_equal(to_numpy(got[0]), to_numpy(want[0]))
    np.testing.assert_array_equal(to_numpy(got[1]), to_numpy(want[1]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_out_pairs_are_refused_untouched(case):
    args, kwargs, shape, aux_dtype = CASES[case]
    op = _op(case)
    name = case.split("-")[0]
    aux = "argmax" if aux_dtype == np.int64 else "scale"
    y, a = np.zeros(shape, np.float32), np.zeros(shape, aux_dtype)
    bad = [
        (y, TypeError, f"{name}: out must be a pair \\(y, {aux}\\) of arrays"),
        ([y, a], TypeError, "must be a pair"),
        ((y,), TypeError, "must be a pair"),
        ((y, None), TypeError, "got None in it"),
        ((y, np.zeros(shape, np.float64)), TypeError, f"out\\[1\\] \\({aux}\\).*must have dtype"),
        ((np.zeros(shape[:-1] + (shape[-1] + 1,), np.float32), a), ValueError,
         "out\\[0\\] \\(y\\).*must have shape"),
        ((np.zeros(shape, np.float32)[..., ::-1], a), ValueError, "C-contiguous"),
    ]
    if aux_dtype == np.float32:
        bad.append(((y, y), ValueError, "share memory"))
    bad.append(((args[0], a) if args[0].shape == shape else (y, a[..., :0]),
                ValueError, "shares memory with x|must have shape"))
    for out, exc, pattern in bad:
        outs = out if isinstance(out, (tuple, list)) else (out,)
        before = [np.array(o, copy=True) for o in outs if isinstance(o, np.ndarray)]
        with pytest.raises(exc, match=pattern):
            op(*args, **kwargs, out=out)
        after = [o for o in (out if isinstance(out, (tuple, list)) else (out,))
                 if isinstance(o, np.ndarray)]
        for b, o in zip(before, after):
            np.testing.assert_array_equal(b, o)


def test_layers_reuse_their_pair_buffers():
    """Layers pass their own buffers, so a second batch of one shape allocates no new output."""
    from fastnn import models

    model = models.seed_convnet(seed=0).eval()
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    first = model(x).copy()
    lrn = model[2]
    y_before = lrn._buffers["y"][0]
    again = model(x)
    assert model[2]._buffers["y"][0] is y_before
    np.testing.assert_array_equal(again, first)
