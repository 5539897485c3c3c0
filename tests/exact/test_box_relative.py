"""Tests of the total-momentum block solver for two electrons in the box.

Reference: a brute-force diagonalization in the full two-particle plane-wave basis
written here, with no use of the centre-of-mass separation (ordered pairs (n_1, n_2),
the Coulomb coupling (n_1, n_2) -> (n_1 + g, n_2 - g) and, for the polarized pair, an
explicit antisymmetrization), on the same basis |n_1 - n_2| <= n_cut.
"""

import itertools

import numpy as np
import pytest

from fermiflow.exact.augmented_basis import augmented_tables
from fermiflow.exact.box_relative import box_relative_levels
from fermiflow.exact.ewald_pair import ewald_pair_constant, ewald_pair_fourier


def _brute_force(dim, box_length, twist, n_cut, n_total, polarized):
    """Two-particle levels on {(n_1, n_2): |n_1 - n_2| <= n_cut, |(n_1 + n_2)_i| <= n_total}."""
    span = range(-n_cut - n_total, n_cut + n_total + 1)
    pairs = [
        (a, b)
        for a in itertools.product(span, repeat=dim)
        for b in itertools.product(span, repeat=dim)
        if sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) <= n_cut**2
        and all(abs(x + y) <= n_total for x, y in zip(a, b, strict=True))
    ]
    n1 = np.array([p[0] for p in pairs])
    n2 = np.array([p[1] for p in pairs])
    k1 = 2 * np.pi / box_length * (n1 + np.asarray(twist))
    k2 = 2 * np.pi / box_length * (n2 + np.asarray(twist))
    kinetic = 0.5 * np.sum(k1**2 + k2**2, axis=1)
    same_total = np.all((n1 + n2)[:, None, :] == (n1 + n2)[None, :, :], axis=-1)
    transfer = n1[:, None, :] - n1[None, :, :]  # <a| V |b>: n1_a = n1_b + g
    coupling = np.where(same_total, ewald_pair_fourier(transfer, dim=dim, box_length=box_length), 0)
    hamiltonian = np.diag(kinetic + ewald_pair_constant(dim=dim, box_length=box_length)) + coupling
    if polarized:
        index = {p: i for i, p in enumerate(pairs)}
        rows = [(index[p], index[(p[1], p[0])]) for p in pairs if p[0] < p[1]]
        antisymmetric = np.zeros((len(pairs), len(rows)))
        for column, (i, j) in enumerate(rows):
            antisymmetric[i, column], antisymmetric[j, column] = 1 / np.sqrt(2), -1 / np.sqrt(2)
        hamiltonian = antisymmetric.T @ hamiltonian @ antisymmetric
    return np.linalg.eigvalsh(hamiltonian)


def _blocks(dim, box_length, twist, n_cut, n_total, polarized, n_aug=None):
    """The same spectrum from box_relative_levels: K^2 / 4 + relative + constant."""
    levels = []
    exchanges = (-1,) if polarized else (1, -1)
    relative = {
        (c, e): box_relative_levels(
            dim=dim,
            box_length=box_length,
            coupling=1.0,
            parity_class=c,
            exchange=e,
            n_cuts=[n_cut],
            n_aug=n_aug,
        )[0]
        for c in itertools.product((0, 1), repeat=dim)
        for e in exchanges
    }
    for total in itertools.product(range(-n_total, n_total + 1), repeat=dim):
        total = np.asarray(total)
        center = np.sum((np.pi / box_length * (total + 2 * np.asarray(twist))) ** 2)
        for exchange in exchanges:
            levels.append(center + relative[(tuple(total % 2), exchange)])
    constant = ewald_pair_constant(dim=dim, box_length=box_length)
    return np.sort(np.concatenate(levels)) + constant


@pytest.mark.parametrize("polarized", [True, False])
@pytest.mark.parametrize(
    "dim, twist, n_cut, n_total",
    [(2, (0.25, 0.25), 4, 1), (2, (0.0, -0.3), 3, 2), (3, (0.1, -0.2, 0.3), 2, 1)],
    ids=["2d-quarter-twist", "2d-twist", "3d-twist"],
)
def test_blocks_match_brute_force_two_particle_basis(dim, twist, n_cut, n_total, polarized):
    box_length = 2.7
    brute = _brute_force(dim, box_length, twist, n_cut, n_total, polarized)
    blocks = _blocks(dim, box_length, twist, n_cut, n_total, polarized)
    assert brute.shape == blocks.shape
    np.testing.assert_allclose(blocks, brute, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim, n_cut, n_aug", [(2, 10, 6), (3, 4, 2)])
def test_coupling_zero_gives_free_relative_levels(dim, n_cut, n_aug):
    box_length = 1.9
    tables = augmented_tables(dim=dim, box_length=box_length, n_max=n_cut)
    for parity_class in [(0,) * dim, (1,) + (0,) * (dim - 1)]:
        d = np.array(list(itertools.product(range(-n_cut, n_cut + 1), repeat=dim)))
        d = d[np.all((d - parity_class) % 2 == 0, axis=1) & (np.sum(d**2, axis=1) <= n_cut**2)]
        momentum_square = np.sort(np.sum((np.pi / box_length * d) ** 2, axis=1))
        both = []
        for exchange in (1, -1):
            levels = box_relative_levels(
                dim=dim,
                box_length=box_length,
                coupling=0.0,
                parity_class=parity_class,
                exchange=exchange,
                n_cuts=[n_cut],
                n_aug=n_aug,
                tables=tables,
            )[0]
            both.append(levels)
        # The plane waves are in the span: their levels come out exactly (to rounding),
        # and each extra cusp direction only adds levels above the cutoff.
        merged = np.sort(np.concatenate(both))[: len(momentum_square)]
        keep = momentum_square < (np.pi / box_length * n_cut) ** 2
        np.testing.assert_allclose(merged[keep], momentum_square[keep], rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("exchange", [1, -1])
def test_augmented_levels_are_below_plane_wave_levels(exchange):
    # The augmented span contains the plane waves: every Ritz level can only go down.
    kwargs = dict(dim=2, box_length=3.5, coupling=1.0, parity_class=(0, 1), exchange=exchange)
    plain = box_relative_levels(n_cuts=[12], **kwargs)[0]
    augmented = box_relative_levels(n_cuts=[12], n_aug=6, **kwargs)[0]
    count = len(plain) // 2
    assert np.all(augmented[:count] <= plain[:count] + 1e-11)
    # The cusp functions remove most of the plane-wave truncation error of the ground
    # level (it has contact): the gain is over ten times the remaining error.
    finer = box_relative_levels(n_cuts=[20], n_aug=6, **kwargs)[0]
    assert plain[0] - augmented[0] > 10 * abs(augmented[0] - finer[0])


@pytest.mark.parametrize("exchange", [1, -1])
def test_augmented_levels_converge_in_the_cutoff(exchange):
    # rs = 2 (L = 2 sqrt(2 pi)); nested plane waves at fixed cusp functions.
    box_length = 2.0 * np.sqrt(2.0 * np.pi)
    levels = box_relative_levels(
        dim=2,
        box_length=box_length,
        coupling=1.0,
        parity_class=(1, 1),
        exchange=exchange,
        n_cuts=[12, 18, 24],
        n_aug=8,
    )
    low = [lv[:8] for lv in levels]
    first, second = np.max(np.abs(low[1] - low[0])), np.max(np.abs(low[2] - low[1]))
    assert second < 1e-7 and second < first / 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(parity_class=(0, 2)), "parity_class"),
        (dict(parity_class=(0,)), "parity_class"),
        (dict(exchange=0), "exchange"),
        (dict(n_cuts=[]), "n_cuts"),
        (dict(n_cuts=[0]), "n_cut"),
        (dict(n_aug=5), "n_aug"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = (
        dict(dim=2, box_length=1.0, coupling=1.0, parity_class=(0, 0), exchange=1, n_cuts=[4])
        | kwargs
    )
    with pytest.raises(ValueError, match=match):
        box_relative_levels(**args)
