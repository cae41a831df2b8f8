"""The selection vocabulary lives in `pcframe.core`; `pcframe.utils` re-exports it (pcax's layout)."""

from ..core._selection import Mask, as_predicate, m

__all__ = ["Mask", "as_predicate", "m"]
