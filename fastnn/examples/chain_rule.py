"""The chain rule on a computational graph: ``e = (a + b) * (b + 1)`` at ``a=2, b=1``.

Each node's forward returns its value and a ``backward`` function, as fastnn's layers do
(``Layer.forward(X) -> (Y, backward)``). Running the backward functions in reverse order
sums the gradient along every path: ``de/da = b + 1 = 2`` and
``de/db = (b + 1) + (a + b) = 5``. Where PyTorch is installed, its autograd agrees.
"""

from __future__ import annotations

from typing import Callable

Backward = Callable[[float], tuple]


def add(x: float, y: float) -> tuple[float, Backward]:
    def backward(d):
        return d, d  # the Jacobian of a sum is ones

    return x + y, backward


def mul(x: float, y: float) -> tuple[float, Backward]:
    def backward(d):
        return d * y, d * x  # each factor's gradient is the other factor

    return x * y, backward


def gradients(a: float, b: float) -> tuple[float, float, float]:
    """``e`` and ``(de/da, de/db)`` by running the graph's backward functions in reverse."""
    c, c_backward = add(a, b)
    d, d_backward = add(b, 1.0)
    e, e_backward = mul(c, d)
    dc, dd = e_backward(1.0)
    da, db_from_c = c_backward(dc)
    db_from_d, _ = d_backward(dd)
    return e, da, db_from_c + db_from_d  # b feeds two nodes: their gradients add


def torch_check(a: float, b: float):
    """``(de/da, de/db, cuda available)`` from PyTorch's autograd, or None without torch."""
    from fastnn import _compat

    torch, _ = _compat.torch()
    if torch is None:
        return None
    ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ((ta + tb) * (tb + 1)).backward()
    return float(ta.grad), float(tb.grad), bool(torch.cuda.is_available())


def main() -> dict:
    e, da, db = gradients(2.0, 1.0)
    print(f"e = (a + b) * (b + 1) at a=2, b=1: e = {e:g}, de/da = {da:g}, de/db = {db:g}")
    result = {"e": e, "de_da": da, "de_db": db}
    check = torch_check(2.0, 1.0)
    if check is not None:
        print(f"PyTorch autograd agrees: de/da = {check[0]:g}, de/db = {check[1]:g} "
              f"(CUDA available to PyTorch: {check[2]})")
        result["torch"] = check[:2]
    return result


if __name__ == "__main__":
    main()
