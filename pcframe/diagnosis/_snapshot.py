"""Leave the user's objects exactly as they were: snapshot every parameter value, put it back afterwards.

The diagnosis runs the user's own training step on the user's own model and optimiser (so that it
measures what training really does, with the compiled programs training already uses), inside
`preserved`. That context manager records the value of every `Param` of the objects given and of the
global key generator `RKG` (weights, activities and their caches, optimiser states, random keys) with
`pcframe.split`, and writes the recorded values back with `pcframe.merge` (all or nothing) when the
block ends, whether it ends normally or with an error. JAX arrays are immutable, so putting the very
same array objects back makes the state bit-identical to what it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..core._random import RKG
from ..core._state import merge, split


@contextlib.contextmanager
def preserved(**objects: Any) -> Iterator[None]:
    """Run the block, then restore every parameter of `objects` (and of `RKG`) to its value on entry.

    **Arguments:**

    - `**objects`: models, optimisers and other modules, by name (`None` values are ignored).

    **Example:**

    ```python
    with preserved(model=model, optim_w=optim_w):
        train_supervised(model, optim_w, x, y, inference=inference)   # changes the weights...
    # ...which are back to their values here, bit for bit, and so is RKG's key
    ```
    """
    structure, _ = split({k: v for k, v in objects.items() if v is not None}, implicit=(RKG,))
    saved = [param.value for param in structure.params]
    try:
        yield
    finally:
        merge(structure, saved)
