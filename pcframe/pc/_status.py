"""Statuses a model can be put in with `pcframe.utils.step`."""


class STATUS:
    """Named statuses used by `Vode` rules.

    - `STATUS.NONE` (`None`): the default, outside any special phase.
    - `STATUS.INIT` (``"init"``): forward initialisation; the default `Vode`
      rules then copy each incoming prediction into the activity (``h = u``).
    - `STATUS.ERRORS` (``"errors"``): error-parametrised inference (ePC,
      `pcframe.inference.ErrorInference`); a free node's ``h`` holds its prediction
      error $\\epsilon$, and ``vode(u)`` turns it into the activity ``h = u + h``.

    Any hashable value can be used as a custom status; rules match it exactly.
    """

    NONE = None
    INIT = "init"
    ERRORS = "errors"
