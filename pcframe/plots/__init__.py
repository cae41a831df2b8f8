"""Figures predictive coding research draws all the time, from the numbers pcframe returns.

Needs matplotlib, the optional extra ``plots``: ``pip install "pcframe[plots]"``. ``import pcframe``
never imports matplotlib; ``import pcframe.plots`` does, and says how to install it when it is missing.

- `inference_energies`: the energy of each layer over the inference steps (a recording strategy's
  ``stats["energies"]``, a training step's ``out["inference_energies"]``).
- `training_curves`: a history of lists (energy, loss, accuracy per epoch or batch; train vs test).
- `layer_norms` / `metrics_norms`: per-layer norms over training (``Metrics(activity_norms=True,
  param_norms=True, grad_norms=True)``).

Every function takes plain data (arrays, lists, dicts), draws into the `ax` it is given or a new
figure, and returns the Axes it drew on. Axes are labelled with their units; a series that is positive
and spans an order of magnitude or more gets a log scale unless ``log=False``.

**Example:**

```python
import pcframe.plots as pxp

stats = pxi.DiscreteInference(step_size=0.1, steps=50, record_energies=True).run(model, x)
ax = pxp.inference_energies(stats["energies"])
ax.figure.savefig("energies.png")
```
"""

from ._backend import MISSING_MATPLOTLIB
from ._inference import inference_energies
from ._norms import layer_norms, metrics_norms
from ._training import training_curves

__all__ = ["MISSING_MATPLOTLIB", "inference_energies", "layer_norms", "metrics_norms", "training_curves"]
