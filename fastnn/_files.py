"""Writing files so that a failure never destroys what was there: :func:`atomic_write`.

Every file fastnn writes for the user (saved models, ``history.json``, ``curves.png``,
``fastnn bench --json``, IDX files) goes through :func:`atomic_write`: the data is written
to a temporary file in the target's folder, flushed and fsynced, and only then renamed
onto the target with :func:`os.replace` (atomic on POSIX and Windows), after which the
folder is fsynced where the platform allows it, so the rename itself survives a crash. If
anything fails on the way (an exception from the code writing the data, a full disk, an
interrupt), the temporary file is removed and the previous file is left byte for byte as
it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from typing import IO, Any, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write"]


def _create_temporary(directory: str, name: str) -> tuple[int, str]:
    """A new file next to the target, opened for writing; permissions as ``open`` gives
    them (``0o666`` less the umask), since ``os.open`` applies the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".{name[:200]}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
        except OSError as exc:  # name the file the caller asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror, os.path.join(directory, name)) from None
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; folders cannot be opened (or fsynced) everywhere."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *,
                 encoding: Optional[str] = None) -> Iterator[IO[Any]]:
    """Open a temporary file to write ``path``'s new content; replace ``path`` on success.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaults to UTF-8). The target
    keeps the permissions of the file it replaces. On any exception inside the ``with``
    block (or while finishing the file) the temporary file is removed, ``path`` is left
    untouched and the exception propagates.

    Example
    -------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(path, "w") as f:
    ...     _ = f.write("kept")
    >>> try:
    ...     with atomic_write(path, "w") as f:
    ...         _ = f.write("half")
    ...         raise OSError("disk full")
    ... except OSError:
    ...     pass
    >>> open(path).read(), len(os.listdir(os.path.dirname(path)))
    ('kept', 1)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    target = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(target)
    fd, temporary = _create_temporary(directory, name)
    try:
        if mode == "w":
            file = os.fdopen(fd, "w", encoding=encoding or "utf-8")
        else:
            file = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(OSError):  # keep the replaced file's permissions
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def save_figure(fig: Any, path: PathLike) -> PathLike:
    """Write a matplotlib figure to ``path`` as a 100-dpi PNG, atomically, and close it
    (also when writing fails); returns ``path``."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as file:
            fig.savefig(file, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
