"""The `step` context: a status for a block of code, and parameters cleared around it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..core._module import Module


@contextlib.contextmanager
def step(module: Module, status: Any = None, *, clear_params: Any = None) -> Iterator[Module]:
    """Run a block with `module` in `status`, clearing the chosen parameters before and after.

    **Arguments:**

    - `module`: the model.
    - `status`: the status its Vodes see in the block (e.g. `STATUS.INIT`); reset to `None` after.
    - `clear_params`: a filter of parameters to set to `None` on entry and exit
      (typically `VodeParam.Cache`, so each step starts from fresh caches).

    **Returns:** a context manager yielding `module`.

    **Example:**

    ```python
    with step(model, STATUS.INIT, clear_params=VodeParam.Cache):
        forward(x, y, model=model)
    ```
    """
    if not isinstance(module, Module):
        raise TypeError(f"step(...) needs a pcframe Module as its first argument, got {type(module).__name__}.")
    module.set_status(status)
    if clear_params is not None:
        module.clear_params(clear_params)
    try:
        yield module
    finally:
        if clear_params is not None:
            module.clear_params(clear_params)
        module.set_status(None)
