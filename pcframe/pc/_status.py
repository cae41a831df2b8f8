"""Statuses a model can be put in with `pcframe.utils.step`."""


class STATUS:
    """Named statuses used by `Vode` rules.

    - `STATUS.NONE` (`None`): the default, outside any special phase.
    - `STATUS.INIT` (``"init"``): forward initialisation; the default `Vode`
      rules then copy each incoming prediction into the activity (``h = u``).
    - `STATUS.ERRORS` (``"errors"``): error-parametrised inference (ePC,
      `pcframe.inference.ErrorInference`); a free node's ``h`` holds its prediction
      error $\\epsilon$, and ``vode(u)`` turns it into the activity ``h = u + h``.

    - `STATUS.LEARN` (``"learn"``): the pass that takes the weight gradient
      (`pcframe.inference.param_grad`, `value_grad_and_layers`, the training steps' weight step);
      `pcframe.nn.BatchNorm` differentiates through the batch statistics there. No default `Vode` rules.

    Any hashable value can be used as a custom status; rules match it exactly.
    """

    NONE = None
    INIT = "init"
    ERRORS = "errors"
    LEARN = "learn"
