"""Statuses a model can be put in with `pcframe.utils.step`."""


class STATUS:
    """Named statuses used by `Vode` rules.

    - `STATUS.NONE` (`None`): the default, outside any special phase.
    - `STATUS.INIT` (``"init"``): forward initialisation; the default `Vode`
      rules then copy each incoming prediction into the activity (``h = u``).

    Any hashable value can be used as a custom status; rules match it exactly.
    """

    NONE = None
    INIT = "init"
