"""fastnn's CUDA 13 kernels: the extension module ``fastnn_cuda13._cuda``.

Nothing here is used directly; ``fastnn`` loads the module for its ``cuda`` backend
(``fastnn/_compat.py``, ``cuda_native``) when the versions match. Importing this package
never touches the GPU.
"""

from fastnn_cuda13._version import __version__

__all__ = ["__version__"]
