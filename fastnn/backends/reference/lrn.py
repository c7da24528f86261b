"""(being written)"""

from __future__ import annotations


class LrnOps:
    pass
