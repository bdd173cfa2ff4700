"""The vectorised prior transform and the row-blocked fold agree with the plain forms."""

from __future__ import annotations

import numpy as np
import pytest

from jxspec_nb._jax import jax, jnp
from jxspec_nb.inference._distributions import PriorDef, VectorForward
from jxspec_nb.inference._model_eval import ObsEval, build_obs_data, fold_blocks

PRIORS = [
    PriorDef("Uniform", (0.0, 3.0)),
    PriorDef("LogUniform", (1e-5, 0.1)),
    PriorDef("Normal", (1.0, 2.0)),
    PriorDef("TruncatedNormal", (6.7, 0.01), 6.6, 6.8),
    PriorDef("LogNormal", (0.0, 1.0)),
    PriorDef("HalfNormal", (2.0,)),
    PriorDef("TruncatedNormal", (0.0, 1.0), -1.0, None),
    PriorDef("TruncatedNormal", (0.0, 1.0), None, 1.0),
    PriorDef("TruncatedNormal", (0.0, 1.0)),
    PriorDef("Uniform", (1.0, 2.0)),
    PriorDef("LogUniform", (1e-3, 1.0)),
]


def _scalar(priors: list[PriorDef], u: np.ndarray) -> tuple[np.ndarray, float]:
    out = [p.forward(jnp.asarray(u[k])) for k, p in enumerate(priors)]
    return np.array([float(x) for x, _ in out]), sum(float(lp) for _, lp in out)


@pytest.mark.parametrize("order", ["mixed", "single_kind", "reversed"])
def test_vector_forward_matches_each_prior(order: str) -> None:
    priors = {"mixed": PRIORS, "single_kind": [PRIORS[1], PRIORS[10]],
              "reversed": PRIORS[::-1]}[order]
    rng = np.random.default_rng(3)
    vf = jax.jit(VectorForward(priors))
    for _ in range(3):
        u = rng.normal(scale=2.0, size=len(priors) + 4)  # extra entries: nuisance, ignored
        x, lp = vf(jnp.asarray(u))
        x0, lp0 = _scalar(priors, u)
        np.testing.assert_allclose(np.asarray(x), x0, rtol=1e-13, atol=1e-300)
        assert float(lp) == pytest.approx(lp0, rel=1e-12, abs=1e-12)
    # every value lies in its prior's support
    for p, v in zip(priors, np.asarray(x), strict=True):
        lo, hi = p.support
        assert lo <= v <= hi


def test_vector_forward_gradient_matches() -> None:
    u = np.linspace(-1.5, 1.5, len(PRIORS))
    vf = VectorForward(PRIORS)

    def total_vec(v: jnp.ndarray) -> jnp.ndarray:
        x, lp = vf(v)
        return lp + jnp.sum(jnp.sin(x))

    def total_scalar(v: jnp.ndarray) -> jnp.ndarray:
        out = [p.forward(v[k]) for k, p in enumerate(PRIORS)]
        return sum(lp + jnp.sin(x) for x, lp in out)

    g1 = jax.grad(total_vec)(jnp.asarray(u))
    g0 = jax.grad(total_scalar)(jnp.asarray(u))
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g0), rtol=1e-12)


def test_no_priors() -> None:
    x, lp = VectorForward([])(jnp.zeros(3))
    assert x.shape == (0,) and float(lp) == 0.0


def test_fold_blocks_cover_every_nonzero() -> None:
    rng = np.random.default_rng(0)
    n, m = 100, 1500
    rows = np.arange(n)[:, None]
    cols = np.arange(m)[None, :]
    band = (cols >= 12 * rows) & (cols < 12 * rows + 400)  # drifting band, as a CCD RMF
    dense = np.where(band, rng.random((n, m)), 0.0)
    blocks = fold_blocks(dense != 0)
    assert 2 <= len(blocks) <= 4
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    covered = np.zeros_like(band)
    for r0, r1, c0, c1 in blocks:
        covered[r0:r1, c0:c1] = True
    assert not np.any(band & ~covered)
    assert covered.sum() < 0.7 * n * m
    # a full matrix or a small one stays whole
    assert fold_blocks(np.ones((100, 1500), dtype=bool)) == ()
    assert fold_blocks(np.ones((10, 100), dtype=bool)) == ()


def test_blocked_fold_equals_dense_on_ulx4() -> None:
    from jxspec_nb import datasets

    obs = datasets.load("ngc7793_ulx4", bkg=None)
    d, sparse, blocks = build_obs_data(obs, "none", "cstat")
    assert not sparse and blocks, "the ULX-4 EPIC-pn fold should be split in row blocks"
    flux = jnp.asarray(np.random.default_rng(1).random(obs.fold.shape[1]))
    got = np.asarray(ObsEval.fold(flux, d, sparse, blocks))
    want = obs.fold_dense() @ np.asarray(flux)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    w = jnp.asarray(np.random.default_rng(2).random(obs.fold.shape[0]))
    g = jax.grad(lambda f: jnp.dot(w, ObsEval.fold(f, d, sparse, blocks)))(flux)
    np.testing.assert_allclose(np.asarray(g), obs.fold_dense().T @ np.asarray(w), rtol=1e-10,
                               atol=1e-12 * float(np.abs(g).max()))
