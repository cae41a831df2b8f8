"""Why does my PC network not learn? `diagnose` measures it on one batch and says what to change.

```python
from pcframe.diagnosis import diagnose

report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
print(report)          # one line per finding: what was measured, the threshold crossed, one piece of advice
report.figure()        # the measurements as a matplotlib figure (pip install "pcframe[plots]")
```

The findings (each measured, each threshold documented in `Thresholds`):

| kind | measured | threshold |
| --- | --- | --- |
| ``nonfinite`` | the first node energy or weight gradient that is NaN/inf | any |
| ``inference_diverging`` | $(F_T - \\min_t F_t)/F_0$ over inference | > 0.05 |
| ``inference_not_converged`` | energy drop per step, last 10 % of the steps over the first 10 % | > 0.5 |
| ``errors_imbalanced`` | $\\log_{10}(\\max_\\ell E_\\ell/\\min_\\ell E_\\ell)$ after inference | > 8 |
| ``output_energy_vanishes`` | output energy after the feedforward pass, with accuracy < 0.9 | < 1e-6 |
| ``weights_frozen`` / ``weights_runaway`` | $\\lVert\\Delta W_\\ell\\rVert/\\lVert W_\\ell\\rVert$ over its median | < 0.01 / > 100 |

The model, its optimiser and `pcframe.RKG` are left exactly as they were.
"""

from ._diagnose import diagnose
from ._figure import plot_report
from ._measure import Measurements
from ._report import Finding, Report
from ._thresholds import Thresholds

__all__ = ["Finding", "Measurements", "Report", "Thresholds", "diagnose", "plot_report"]
