r"""Analysis tools: closed-form theory of deep linear predictive coding networks.

For a network of bias-free linear layers $W_1, \dots, W_L$ with clamped input and output, the
energy is a quadratic in the hidden activities, so its minimum, minimiser and curvature have closed
forms. They serve as ground truth for inference engines and for studying the energy landscape::

    import pcframe.analysis as pxa

    ws = pxa.linear_weights(model)                  # [W_1, ..., W_L] of a bias-free Linear model
    f_star = pxa.linear_equilibrium_energy(ws, x, y)
    zs = pxa.linear_activity_solution(ws, x, y)     # [z_1, ..., z_{L-1}], each (N, d_l)
    H = pxa.activity_hessian(ws)
"""

from ._linear_theory import (
    activity_hessian,
    activity_hessian_eigenvalues,
    linear_activity_solution,
    linear_equilibrium_energy,
    linear_rescaling_matrix,
    linear_weights,
)

__all__ = [
    "activity_hessian",
    "activity_hessian_eigenvalues",
    "linear_activity_solution",
    "linear_equilibrium_energy",
    "linear_rescaling_matrix",
    "linear_weights",
]
