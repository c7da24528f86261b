"""(being written)"""

from __future__ import annotations


class PoolOps:
    pass
