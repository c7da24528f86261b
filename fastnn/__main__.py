"""``python -m fastnn``: the ``fastnn`` command line."""

from fastnn.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
