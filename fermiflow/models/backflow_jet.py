"""The residual backflow of :mod:`fermiflow.models.backflow` as one pure function of jets.

``backflow_jet(spec, params, x, order)`` returns zeta = T(x) (order 0), with its
Jacobian d zeta / d x (order 1) and with its Laplacian sum_t d^2 zeta / d x_t^2
(order 2), all from one pass that keeps the pair stream in pair form
(:mod:`fermiflow.models.jets`). The pair stream of the backflow never sees the
one-particle stream, so every pair feature h2_ij is a function of r_ij alone and
costs ``dim`` forward-mode passes, not n * dim; only the one-particle stream (n
rows), the pair amplitudes a_ij (one scalar per pair) and the sums
sum_j a_ij u_ij carry all n * dim tangents.

The parameters are declared by :class:`BackflowParams` (flax, the same tree and
initial values as the original compact module: ``Dense_0``... ``scale_pair``,
``scale_radial``...). The certified Lipschitz cap depends on the parameters only,
so it is one scalar per call, shared by all walkers of a vmap.

Units: Hartree atomic units, lengths in Bohr. Acts on a single configuration
``(n, dim)``; vmap over walkers at the call site.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fermiflow.models.features import (
    displacement_geometry,
    displacement_harmonics,
    displacements,
    spin_feature,
)
from fermiflow.models.jets import (
    Jet,
    block_mean,
    identity_jet,
    jet_add,
    jet_concat,
    jet_linear,
    jet_tanh,
    pair_block,
    pair_combine,
    pair_jets,
    pair_sum,
)
from fermiflow.models.lipschitz import (
    amplitude_bound,
    certified_factor,
    input_pair_bound,
    network_bound,
    radial_bound,
    spectral_norm,
    stream_layer_bounds,
)
from fermiflow.types import Array, Params

__all__ = [
    "RADIAL_WIDTHS", "BackflowParams", "BackflowSpec", "backflow_jet", "certified_cap",
    "field_modes",
]

# Widths sigma_k of the radial pair Gaussians, as fractions of the box side.
RADIAL_WIDTHS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackflowSpec:
    """Static structure of the backflow (validated by ``make_backflow``)."""

    n_up: int
    n_down: int
    box_length: float | None
    depth: int
    width_one: int
    width_two: int
    n_frequencies: int
    init_scale: float
    max_lipschitz: float | None  # None: checked only (free space, or certify=False)
    n_radial: int  # radial pair Gaussians (box only; 0 in free space)
    radial_blocks: int  # further radial-only residual layers, each certified on its own
    free_displacement: bool = False  # box: + s_free W h1_i, a free vector per particle
    pair_field: int = 0  # box: order M of the Fourier vector pair layer (0: none)

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """The nonempty spin blocks [start, stop)."""
        n = self.n_up + self.n_down
        return [(lo, hi) for lo, hi in ((0, self.n_up), (self.n_up, n)) if hi > lo]

    def input_widths(self, dim: int) -> tuple[int, int]:
        """Widths of the one- and two-particle input streams."""
        if self.box_length is None:
            return 2, 1
        return 1, 2 * self.n_frequencies * dim + 1


class BackflowParams(nn.Module):
    """Declares the backflow parameters (the pass itself is :func:`backflow_jet`)."""

    spec: BackflowSpec

    @nn.compact
    def __call__(self, x: Array) -> None:
        """Create the parameters for (n, dim) positions x; returns nothing."""
        spec, dtype = self.spec, x.dtype
        dense = functools.partial(nn.Dense, dtype=dtype, param_dtype=dtype)
        one, two = spec.input_widths(x.shape[1])
        n_blocks, k = len(spec.blocks), 0
        for _ in range(spec.depth):
            dense(spec.width_one, name=f"Dense_{k}")(jnp.zeros((1, one + n_blocks * (one + two)),
                                                               dtype))
            dense(spec.width_two, name=f"Dense_{k + 1}")(jnp.zeros((1, two), dtype))
            one, two, k = spec.width_one, spec.width_two, k + 2
        dense(1, name=f"Dense_{k}")(jnp.zeros((1, two + 2 * one), dtype))
        constant = nn.initializers.constant
        self.param("scale_pair", constant(spec.init_scale), (), dtype)
        radial = constant(spec.init_scale / max(spec.n_radial, 1))
        if spec.n_radial:
            self.param("scale_radial", radial, (2, spec.n_radial), dtype)
        if spec.box_length is None:
            dense(1, name=f"Dense_{k + 1}")(jnp.zeros((1, one), dtype))
            self.param("scale_one", constant(spec.init_scale), (), dtype)
        if spec.free_displacement:
            dim = x.shape[1]
            dense(dim, use_bias=False, name="displacement")(jnp.zeros((1, one), dtype))
            self.param("scale_free", constant(spec.init_scale), (), dtype)
        for block in range(spec.radial_blocks):
            self.param(f"scale_radial_{block + 1}", radial, (2, spec.n_radial), dtype)
        if spec.pair_field:
            modes = field_modes(spec.pair_field, x.shape[1])
            self.param("pair_field", nn.initializers.zeros, (2, len(modes), x.shape[1]), dtype)


def field_modes(order: int, dim: int) -> np.ndarray:
    """Integer vectors m with |m|_inf <= order in one half-space (m > 0 lexicographically).

    Returns:
      (M, dim) int array, M = ((2 order + 1)^dim - 1) / 2: sin(2 pi m . r / L) over
      these m spans the odd periodic functions of r up to that order.
    """
    axis = range(-order, order + 1)
    modes = [m for m in itertools.product(axis, repeat=dim) if m > (0,) * dim]
    return np.asarray(modes, np.int64).reshape(-1, dim)


def _field_bound(spec: BackflowSpec, coefficients: Array, n: int) -> Array:
    """Lip of z -> z_i + sum_j f(z_i - z_j) minus the identity: 2 (n - 1) sup ||df/dr||.

    f(r) = sum_m a_m sin(k_m . r) with a_m = theta_m / ||k_m|| (:func:`_field_layer`)
    has df/dr = sum_m a_m k_m^T cos(k_m . r), so ||df/dr|| <= sum_m ||theta_m||. The
    Jacobian of the layer is (J v)_i = sum_j F_ij (v_i - v_j): a block-diagonal part
    and an off-diagonal part, each with at most n - 1 blocks of norm <= sup ||F|| per
    block row and column (Schur test), so ||J|| <= 2 (n - 1) sup ||F||. Same- and
    opposite-spin coefficients may differ; only the kinds of pairs present count, the
    larger one.
    """
    per_kind = jnp.sum(jnp.linalg.norm(coefficients, axis=-1), -1)  # (2,)
    kinds = [i for i, present in ((0, max(spec.n_up, spec.n_down) > 1),
                                  (1, spec.n_up > 0 and spec.n_down > 0)) if present]
    return 2 * (n - 1) * jnp.max(per_kind[jnp.asarray(kinds or [0])])


def _field_layer(spec: BackflowSpec, coefficients: Array, r: Array) -> Array:
    """f(r_ij) = sum_m a_m sin(k_m . r_ij) per pair, certified if capped: (n, n, dim).

    k_m = 2 pi m / L and a_m = theta_m / ||k_m|| for the learnable dimensionless
    theta_m (``coefficients``: (2, M, dim), same- then opposite-spin pairs): the
    amplitude of each mode is in units of its own wavelength, ||theta_m|| is its share
    of the Lipschitz bound, and an optimizer step of a given size moves every mode
    alike whatever L.
    """
    dim = r.shape[-1]
    k = 2 * math.pi / spec.box_length * field_modes(spec.pair_field, dim)
    waves = jnp.sin(r @ jnp.asarray(k.T, r.dtype))  # (n, n, M), exactly 0 on the diagonal
    waves = waves / jnp.asarray(np.linalg.norm(k, axis=1), r.dtype)
    spin = spin_feature(spec.n_up, spec.n_down, r.dtype)[:, 0]
    same = (spin[:, None] == spin[None, :])[..., None]
    field = jnp.where(same, waves @ coefficients[0], waves @ coefficients[1])
    if spec.max_lipschitz is not None:
        bound = _field_bound(spec, coefficients, r.shape[0])
        field = certified_factor(bound, spec.max_lipschitz) * field
    return field


def _radial(spec: BackflowSpec, weights: Array, distance: Array) -> Array:
    """Radial pair amplitudes sum_k w_k exp(-d^2 / 2 sigma_k^2): (n, n)."""
    widths = spec.box_length * jnp.asarray(RADIAL_WIDTHS[: spec.n_radial], distance.dtype)
    spin = spin_feature(spec.n_up, spec.n_down, distance.dtype)[:, 0]
    same = spin[:, None] == spin[None, :]
    per_pair = jnp.where(same[..., None], weights[0], weights[1])  # (n, n, k)
    return jnp.sum(per_pair * jnp.exp(-0.5 * (distance[..., None] / widths) ** 2), -1)


def _radial_bound(spec: BackflowSpec, weights: Array, n: int) -> Array:
    """B_radial of :mod:`fermiflow.models.lipschitz`: only the pair kinds present count."""
    kinds = [k for k, present in ((0, max(spec.n_up, spec.n_down) > 1),
                                  (1, spec.n_up > 0 and spec.n_down > 0)) if present]
    return radial_bound(jnp.sum(jnp.abs(weights), -1)[jnp.asarray(kinds or [0])], n)


def _cap(spec: BackflowSpec, p: dict, n: int, dim: int) -> Array:
    """The certified factor 1 / max(1, (|s| B + B_radial) / c); params only."""
    dtype = p["scale_pair"].dtype
    smallest_block = min(hi - lo for lo, hi in spec.blocks)
    lip_one = jnp.zeros((), dtype)  # the box one-stream input is the spin
    lip_two = jnp.asarray(input_pair_bound(n, spec.box_length, spec.n_frequencies), dtype)
    one, two = spec.input_widths(dim)
    for layer in range(spec.depth):
        lip_one, lip_two = stream_layer_bounds(
            lip_one, lip_two,
            norm_one=spectral_norm(p[f"Dense_{2 * layer}"]["kernel"]),
            norm_two=spectral_norm(p[f"Dense_{2 * layer + 1}"]["kernel"]),
            residual_one=one == spec.width_one, residual_two=two == spec.width_two,
            n=n, smallest_block=smallest_block,
        )
        one, two = spec.width_one, spec.width_two
    out = spectral_norm(p[f"Dense_{2 * spec.depth}"]["kernel"])
    lip_amplitude = amplitude_bound(lip_one, lip_two, out, n)
    bound = jnp.abs(p["scale_pair"]) * network_bound(
        lip_amplitude, n=n, dim=dim, box_length=spec.box_length
    )
    if spec.free_displacement:  # Lip(s W^T h1) <= |s| ||W|| Lip(H1)
        bound = bound + jnp.abs(p["scale_free"]) * spectral_norm(
            p["displacement"]["kernel"]) * lip_one
    if spec.n_radial:
        bound = bound + _radial_bound(spec, p["scale_radial"], n)
    return certified_factor(bound, spec.max_lipschitz)


def _pair_stream(spec: BackflowSpec, p: dict, r: Array) -> dict:
    """Everything of the backflow that depends on one pair r_ij alone."""
    geometry = displacement_geometry(r, spec.box_length)
    if spec.box_length is None:
        h_two = geometry.distance[..., None]
    else:
        scaled = geometry.distance[..., None] / jnp.asarray(spec.box_length, r.dtype)
        harmonics = displacement_harmonics(r, spec.box_length, spec.n_frequencies)
        h_two = jnp.concatenate([harmonics, scaled], -1)
    streams = []
    for layer in range(spec.depth):
        streams.append(h_two)
        dense = p[f"Dense_{2 * layer + 1}"]
        new = jnp.tanh(h_two @ dense["kernel"] + dense["bias"])
        h_two = h_two + new if new.shape == h_two.shape else new
    out = p[f"Dense_{2 * spec.depth}"]
    pair_part = h_two @ out["kernel"][: h_two.shape[-1], 0] + out["bias"][0]
    parts = {"streams": streams, "out": pair_part, "direction": geometry.direction}
    if spec.n_radial:
        parts["radial"] = _radial(spec, p["scale_radial"], geometry.distance)
    return parts


def _one_input(spec: BackflowSpec, x: Array, order: int) -> Jet:
    spin = Jet(spin_feature(spec.n_up, spec.n_down, x.dtype), None, None)
    if spec.box_length is not None:
        return spin
    n, dim = x.shape
    square = Jet(jnp.sum(x**2, -1, keepdims=True), None, None)
    if order:
        jac = jnp.einsum("ki,ic->kci", jnp.eye(n, dtype=x.dtype), 2 * x)
        lap = jnp.full((n, 1), 2.0 * dim, x.dtype) if order == 2 else None
        square = Jet(square.value, jac.reshape(n * dim, n, 1), lap)
    return jet_concat([spin, square], n * dim, order)


def _one_stream(spec: BackflowSpec, p: dict, x: Array, pairs: dict, order: int) -> Jet:
    n, dim = x.shape
    h_one = _one_input(spec, x, order)
    for layer in range(spec.depth):
        means = []
        for lo, hi in spec.blocks:
            means.append(jet_linear(h_one, lambda a, lo=lo, hi=hi: jnp.broadcast_to(
                jnp.mean(a[lo:hi], 0, keepdims=True), a.shape)))
            means.append(block_mean(pairs["streams"][layer], lo, hi))
        dense = p[f"Dense_{2 * layer}"]
        mixed = jet_concat([h_one, *means], n * dim, order)
        new = jet_tanh(jet_linear(mixed, lambda a, k=dense["kernel"]: a @ k, dense["bias"]))
        h_one = jet_add(h_one, new) if new.value.shape == h_one.value.shape else new
    return h_one


def _one_body(spec: BackflowSpec, p: dict, h_one: Jet, x: Jet) -> Jet:
    """Free space: s_one tanh(w . h1_i + b) x_i."""
    dense = p[f"Dense_{2 * spec.depth + 1}"]
    g = jet_tanh(jet_linear(h_one, lambda a: a @ dense["kernel"], dense["bias"]))
    g = jet_linear(g, lambda a: p["scale_one"] * a)
    value = g.value * x.value
    if x.jac is None:
        return Jet(value, None, None)
    jac = g.jac * x.value + g.value * x.jac
    lap = None
    if x.lap is not None:
        n, dim = x.value.shape
        own = jnp.einsum("iai->ia", g.jac.reshape(n, dim, n))
        lap = g.lap * x.value + 2 * own
    return Jet(value, jac, lap)


def certified_cap(spec: BackflowSpec, params: Params, dim: int) -> Params:
    """Return the params with the certified factor precomputed under ``"cap"``: ().

    :func:`backflow_jet` then uses it instead of computing the spectral norms
    (SVDs) again, e.g. per walker after a per-walker selection of params.
    """
    if spec.max_lipschitz is None:
        return params
    p = dict(params["params"])
    return {**params, "cap": _cap(spec, p, spec.n_up + spec.n_down, dim)}


def _radial_layer(spec: BackflowSpec, weights: Array, r: Array) -> Array:
    """sum_k w_k phi_k(d_ij) u_ij, times its certified factor: (n, n, dim)."""
    geometry = displacement_geometry(r, spec.box_length)
    radial = _radial(spec, weights, geometry.distance)
    if spec.max_lipschitz is not None:
        factor = certified_factor(_radial_bound(spec, weights, r.shape[0]), spec.max_lipschitz)
        radial = factor * radial
    return radial[..., None] * geometry.direction


def backflow_jet(spec: BackflowSpec, params: Params, x: Array, order: int) -> Jet:
    """Return zeta = T(x) with its Jacobian (order >= 1) and Laplacian (order 2).

    Args:
      spec: static structure.
      params: the variables of :class:`BackflowParams` (``{"params": ...}``).
      x: (n, dim) positions.
      order: static, 0, 1 or 2.

    Returns:
      A :class:`~fermiflow.models.jets.Jet` with value (n, dim), jac
      (n * dim, n, dim) (``jac[t, i, a] = d zeta_ia / d x_t``) and lap (n, dim).
    """
    n, dim = x.shape
    # Params initialised in float64 must not promote a float32 pass.
    p = jax.tree.map(lambda leaf: jnp.asarray(leaf, x.dtype), dict(params["params"]))
    pairs = pair_jets(lambda r: _pair_stream(spec, p, r), displacements(x), order)
    h_one = _one_stream(spec, p, x, pairs, order)
    out = p[f"Dense_{2 * spec.depth}"]["kernel"][:, 0]
    width = spec.width_two
    rows = jet_linear(h_one, lambda a: a @ out[width: width + spec.width_one])
    columns = jet_linear(h_one, lambda a: a @ out[width + spec.width_one:])
    amplitude = jet_tanh(pair_combine(pairs["out"], rows, columns))
    amplitude = jet_linear(amplitude, lambda a: p["scale_pair"] * a)
    if spec.n_radial:
        amplitude = jet_add(amplitude, pair_combine(pairs["radial"], None, None))
    factor = 1.0
    if spec.max_lipschitz is not None:  # precomputed by certified_cap, or computed here
        factor = params["cap"] if "cap" in params else _cap(spec, p, n, dim)
        amplitude = jet_linear(amplitude, lambda a: factor * a)
    zeta = identity_jet(x, order)
    # u_ii = 0 exactly in both geometries, so j = i drops out of the sum.
    shift = pair_sum(amplitude, pairs["direction"])
    if spec.free_displacement:
        kernel = p["displacement"]["kernel"]
        shift = jet_add(shift, jet_linear(
            h_one, lambda a: (factor * p["scale_free"]) * (a @ kernel)))
    if spec.box_length is None:
        shift = jet_add(shift, _one_body(spec, p, h_one, zeta))
    zeta = jet_add(zeta, shift)
    for block in range(spec.radial_blocks):
        weights = p[f"scale_radial_{block + 1}"]
        zeta = pair_block(zeta, lambda r, w=weights: _radial_layer(spec, w, r), order)
    if spec.pair_field:
        zeta = pair_block(zeta, lambda r: _field_layer(spec, p["pair_field"], r), order)
    return zeta
