"""Hand-written references for bPC and predictive dendrites: the papers' formulas and JPC's conventions.

JPC's ``bpc_energy_fn``, ``_pdm_single_layer_energy`` / ``pdm_energy_fn``, ``compute_pdm_activity_grad`` and
``compute_pdm_param_grads`` are re-implemented here from JPC's source (JPC is not a dependency): activities are
``[z_1, ..., z_H]`` (hidden nodes), ``top_down_model`` are the layers $f$ from $x$ to $y$, ``bottom_up_model`` the
layers $g$ from $y$ to $x$ (``bottom_up[0]`` predicts $x$ from $z_1$), energies divided by the batch size.
"""

import jax
import jax.numpy as jnp


def weights(model):
    """``(f_params, g_params)``: [(W, b)] of the discriminative and the generative layers."""
    f = [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]
    g = [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.generative_layers]
    return f, g


def functions(params, act=jnp.tanh):
    """The layer functions: ``f[l](z)`` predicts node l+1 from node l, ``g[l](z)`` node l from node l+1."""
    (f_params, g_params) = params
    n = len(f_params)
    f = [
        lambda z, W=W, b=b, i=i: (act if i < n - 1 else (lambda a: a))(z @ W.T + b) for i, (W, b) in enumerate(f_params)
    ]
    g = [lambda z, W=W, b=b, i=i: (act if i > 0 else (lambda a: a))(z @ W.T + b) for i, (W, b) in enumerate(g_params)]
    return f, g


def bpc_formula(params, z, x, y, a_d=1.0, a_g=1.0):
    """Oliviers et al.'s energy, summed over the batch."""
    f, g = functions(params)
    nodes = [x, *z, y]
    disc = sum(0.5 * a_d * jnp.sum((nodes[l] - f[l - 1](nodes[l - 1])) ** 2) for l in range(1, len(nodes)))
    gen = sum(0.5 * a_g * jnp.sum((nodes[l] - g[l](nodes[l + 1])) ** 2) for l in range(len(nodes) - 1))
    return disc + gen


def jpc_bpc_energy(params, activities, y, x, forward_energy_weight=1.0, backward_energy_weight=1.0):
    """JPC's ``bpc_energy_fn`` (its indexing; ``activities`` without the output)."""
    top_down, bottom_up = functions(params)
    H = len(top_down) - 1
    n = activities[0].shape[0]
    delta_0 = x - bottom_up[0](activities[0])
    e_L = y - top_down[-1](activities[H - 1])
    energies = [forward_energy_weight * 0.5 * jnp.sum(e_L**2) + backward_energy_weight * 0.5 * jnp.sum(delta_0**2)]
    for l in range(H):
        act_prev = x if l == 0 else activities[l - 1]
        e_l = activities[l] - top_down[l](act_prev)
        act_next = y if l == H - 1 else activities[l + 1]
        delta_l = activities[l] - bottom_up[l + 1](act_next)
        energies.append(
            forward_energy_weight * 0.5 * jnp.sum(e_l**2) + backward_energy_weight * 0.5 * jnp.sum(delta_l**2)
        )
    return sum(energies) / n


def jpc_pdm_layer_energy(params, activities, y, x, l, forward_energy_weight=1.0, backward_energy_weight=1.0):
    """JPC's ``_pdm_single_layer_energy`` without its optional extra errors."""
    top_down, bottom_up = functions(params)
    H = len(top_down) - 1
    act_prev = x if l == 0 else activities[l - 1]
    e_l = activities[l] - top_down[l](act_prev)
    act_next = y if l == H - 1 else activities[l + 1]
    delta = activities[l] - bottom_up[l + 1](act_next)
    forward = forward_energy_weight * 0.5 * jnp.sum(e_l**2)
    backward = backward_energy_weight * 0.5 * jnp.sum(delta**2)
    return (forward + backward) / activities[0].shape[0]


def jpc_pdm_energy(params, activities, y, x, **weights):
    """JPC's ``pdm_energy_fn``: the sum of the hidden layers' energies."""
    return sum(jpc_pdm_layer_energy(params, activities, y, x, l, **weights) for l in range(len(activities)))


def jpc_pdm_activity_grads(params, activities, y, x, **weights):
    """JPC's ``compute_pdm_activity_grad``: each layer's gradient of its own energy only."""
    grads = []
    for l in range(len(activities)):

        def own(a, l=l):
            acts = list(activities)
            acts[l] = a
            return jpc_pdm_layer_energy(params, acts, y, x, l, **weights)

        grads.append(jax.grad(own)(activities[l]))
    return grads


def jpc_pdm_param_grads(params, activities, y, x, forward_energy_weight=1.0, backward_energy_weight=1.0):
    """JPC's ``compute_pdm_param_grads``: bPC's gradients when both weights are exactly 1, the PDM energy's otherwise."""
    if forward_energy_weight != 1.0 or backward_energy_weight != 1.0:
        return jax.grad(
            lambda p: jpc_pdm_energy(
                p,
                activities,
                y,
                x,
                forward_energy_weight=forward_energy_weight,
                backward_energy_weight=backward_energy_weight,
            )
        )(params)
    return jax.grad(lambda p: jpc_bpc_energy(p, activities, y, x))(params)


def model_param_grads(model, grads):
    """pcframe's gradients (the model-shaped tree of `param_grad`) in the ``(f_params, g_params)`` layout."""
    f = [(layer.nn.weight.value, layer.nn.bias.value) for layer in grads.layers]
    g = [(layer.nn.weight.value, layer.nn.bias.value) for layer in grads.generative_layers]
    return f, g
