"""The one place kernels get their numba decorator.

``NUMBA_DISABLE_JIT=1`` makes every kernel plain Python, which the test suite uses
once for coverage; the decorator itself needs no special case for that.
"""

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    """Compile ``fn`` in nopython mode with an on-disk cache (warm imports skip LLVM)."""
    return numba.njit(cache=True, nogil=True)(fn)  # type: ignore[return-value]
