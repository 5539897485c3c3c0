"""Separate flows for the total-momentum classes of a periodic box.

The box backflow is translation equivariant, T(x + c) = T(x) + c for every constant
shift c, so Psi_K(x + c) = exp(i P_K . c) Psi_K(x) with P_K = sum_{k in K} k the
total momentum of K, WHATEVER the flow. States of different total momentum are
therefore orthogonal even when they use different flows; orthonormality needs one
shared bijection only among the states of one P_K. Grouping the sets K by the parity
class of their total momentum index,

  c(K) = sum_d 2^d [(sum_{k in K} n_{k,d}) mod 2],   k = 2 pi (n + t) / L,

gives 2^dim classes: two sets with the same P_K have the same c(K), so a flow per
class keeps every Psi_K orthonormal while each class gets its own transformation. For
two electrons this is exactly the structure of the spectrum: the relative problem
depends on P only through its parity class (:mod:`fermiflow.exact.two_electron_box`),
so one flow per class can follow the relative states of that class. (A trap does not
conserve momentum: no such freedom there.)

Units: the quantum numbers n are integers (dimensionless).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.types import Array, ArrayLike, Flow, Params, PRNGKey

__all__ = ["make_sector_select", "momentum_class", "stacked_flows"]


def momentum_class(quantum_numbers: ArrayLike) -> tuple[Callable[[Array], Array], int]:
    """Return the parity class c(K) of the total momentum, and the number of classes.

    Args:
      quantum_numbers: (m, dim) integer labels n of the plane-wave modes.

    Returns:
      ``(class_of, 2**dim)`` with ``class_of(occ: (n,) int) -> () int32``.

    Examples:
      >>> import jax.numpy as jnp
      >>> class_of, count = momentum_class([[0, 0], [1, 0], [0, 1], [1, 1]])
      >>> [int(class_of(jnp.array(k))) for k in ([0, 1], [1, 2], [0, 3])], count
      ([1, 3, 3], 4)
    """
    labels = np.asarray(quantum_numbers)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"quantum_numbers must be an (m, dim) integer array, got shape "
                         f"{labels.shape} and dtype {labels.dtype}.")
    weights = jnp.asarray(2 ** np.arange(labels.shape[1]), jnp.int32)
    table = jnp.asarray(labels, jnp.int32)

    def class_of(occ: Array) -> Array:
        total = jnp.sum(table[occ], 0)
        return jnp.sum(jnp.mod(total, 2) * weights)

    return class_of, 2 ** labels.shape[1]


def stacked_flows(flow: Flow, count: int) -> Flow:
    """Return ``count`` independent copies of a flow, params stacked on a leading axis.

    ``apply`` of the result uses copy 0 (for callers that need one representative);
    :func:`make_sector_select` picks the copy of a state.
    """

    def init(key: PRNGKey, x: Array) -> Params:
        return jax.vmap(lambda k: flow.init(k, x))(jax.random.split(key, count))

    return Flow(init, lambda params, x: flow.apply(_copy(params, 0), x))


def _copy(params: Params, index: ArrayLike) -> Params:
    return jax.tree.map(lambda leaf: jnp.asarray(leaf)[index], params)  # host params too


def make_sector_select(
    flow: Flow, count: int, sector_of: Callable[[Array], Array]
) -> Callable[[Params, Array], Params]:
    """Return ``select(stacked_params, occ: (n,)) -> params`` of copy ``sector_of(occ)``.

    Each copy is first prepared (``flow.prepare``: the certified cap's SVDs) from the
    stacked params, which a walker vmap leaves unbatched, so those run once per copy;
    only the prepared params are then gathered per walker. (A per-walker SVD is a
    batched LAPACK call, which can deadlock jaxlib's CPU thread pool on 2 cores.)
    """

    def select(params: Params, occ: Array) -> Params:
        if flow.prepare is not None:
            params = jax.tree.map(lambda *leaves: jnp.stack(leaves),
                                  *[flow.prepare(_copy(params, s)) for s in range(count)])
        return _copy(params, sector_of(occ))

    return select
