"""jxspec_nb's own NUTS transition (``methods._nuts_kernel``) against known answers and
against numpyro's kernel."""

import numpy as np
import pytest

from jxspec_nb._jax import jax, jnp
from jxspec_nb.errors import FitError
from jxspec_nb.inference import fit
from jxspec_nb.inference.methods._nuts_kernel import (
    adaptation_schedule,
    initial_state,
    make_iteration,
    threefry2x32,
)


def _gaussian(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A correlated Gaussian with scales spread over two decades."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    scale = np.logspace(-2, 0, dim)
    cov = (a @ a.T + dim * np.eye(dim)) * np.outer(scale, scale)
    return rng.normal(size=dim), cov


def _run(dense: bool, warmup: int, samples: int, chains: int = 4, max_depth: int = 10):
    mean, cov = _gaussian(5, 3)
    prec = jnp.asarray(np.linalg.inv(cov))
    mu = jnp.asarray(mean)

    def potential(u, data):
        d = u - mu
        return 0.5 * d @ prec @ d

    it = make_iteration(potential, warmup, dense, 0.8, max_depth)

    @jax.jit
    def run(state):
        return jax.vmap(lambda s: jax.lax.scan(lambda s, _: it(s, None), s, None,
                                               length=warmup + samples))(state)

    rng = np.random.default_rng(0)
    imm = np.broadcast_to(np.eye(5) if dense else np.ones(5),
                          (chains,) + ((5, 5) if dense else (5,))).copy()
    keys = rng.integers(0, 2**32, (chains, 2), dtype=np.uint32)
    state, out = run(initial_state(mean + 3 * rng.normal(size=(chains, 5)), imm, keys))
    return mean, cov, state, [np.asarray(o) for o in out]


@pytest.mark.parametrize("dense", [True, False])
def test_samples_a_correlated_gaussian(dense):
    import arviz as az

    warmup = 1000
    mean, cov, state, (z, pe, div, steps, acc, eps) = _run(dense, warmup, 2000)
    draws = z[:, warmup:]  # (chains, draws, dim)
    flat = draws.reshape(-1, 5)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(flat.mean(0) - mean) < 0.05 * sd)
    assert np.all(np.abs(flat.std(0) / sd - 1) < 0.05)
    corr = cov / np.outer(sd, sd)
    assert np.abs(np.corrcoef(flat.T) - corr).max() < 0.05
    assert max(float(az.rhat(draws[..., k])) for k in range(5)) < 1.01
    assert min(float(az.ess(draws[..., k])) for k in range(5)) > 2000
    assert div[:, warmup:].sum() == 0
    # the potential reported is that of the draw
    d = flat[:50] - mean
    assert np.allclose(pe[:, warmup:].reshape(-1)[:50],
                       0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))
    # adaptation: the step size is fixed after warm-up, acceptance near the target,
    # and the dense mass matrix is the covariance (the diagonal one its variances)
    assert np.all(eps[:, warmup:] == eps[:, -1:])
    assert 0.7 < acc[:, warmup:].mean() < 0.95
    imm = np.asarray(state.imm)[0]
    want = cov if dense else np.diag(cov)
    assert np.allclose(imm, want, rtol=0.3, atol=0.3 * np.abs(want).max())
    # with the dense metric the posterior is isotropic: short trajectories
    if dense:
        assert steps[:, warmup:].mean() < 8


def test_threefry_is_jax_randoms_cipher():
    """The transition's inlined Threefry-2x32 gives jax.random's words: its bits for
    counters 0..n-1 and its fold_in keys (a wrong rotation or key-schedule constant
    changes every word)."""
    key = jnp.array([2718281828, 314159265], jnp.uint32)
    n = 257
    w0, w1 = threefry2x32(key[0], key[1], jnp.zeros(n, jnp.uint32),
                          jnp.arange(n, dtype=jnp.uint32))
    np.testing.assert_array_equal(np.asarray(w0 ^ w1),
                                  np.asarray(jax.random.bits(key, (n,), jnp.uint32)))
    for data in (0, 1, 12345):
        np.testing.assert_array_equal(np.stack(threefry2x32(key[0], key[1], 0, data)),
                                      np.asarray(jax.random.fold_in(key, data)))


@pytest.mark.parametrize("dense", [True, False])
def test_first_iteration_finds_the_mode_and_its_curvature(dense):
    """With ``find_mode`` the first iteration runs Newton's method from each chain's start
    (far out: 3 to 10 sd in the narrowest directions) and reports the mode; the first
    inverse mass matrix is then the inverse Hessian there (exact for a Gaussian), the
    chain restarts near the mode, and the next iterations need few leapfrog steps."""
    mean, cov = _gaussian(5, 3)
    cov = cov / 10  # every variance below the cap on the first metric (4)
    prec = jnp.asarray(np.linalg.inv(cov))
    mu = jnp.asarray(mean)

    def potential(u, data):
        d = u - mu
        return 0.5 * d @ prec @ d

    it = make_iteration(potential, 100, dense, 0.8, 10)
    rng = np.random.default_rng(1)
    imm = np.broadcast_to(np.eye(5) if dense else np.ones(5),
                          (4,) + ((5, 5) if dense else (5,))).copy()
    state = initial_state(mean + rng.uniform(-1, 1, (4, 5)), imm,
                          rng.integers(0, 2**32, (4, 2), dtype=np.uint32), find_mode=True)
    one = jax.jit(jax.vmap(lambda s: it(s, None)))
    after, (z, pe, _, evals, _, _) = one(state)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(np.asarray(z) - mean) < 0.05 * sd)
    assert np.all(np.asarray(pe) < 1e-3)
    assert np.all(np.asarray(evals) >= 7)  # the start, 5 columns, a trial at least
    want = cov if dense else np.diag(cov)
    np.testing.assert_allclose(np.asarray(after.imm), np.broadcast_to(want, after.imm.shape),
                               rtol=1e-6, atol=1e-9 * np.abs(want).max())
    assert not np.asarray(after.need_mode).any()
    assert np.asarray(after.need_grad).all() and np.asarray(after.need_eps).all()
    # restarted near the mode (within a few sd), not at the mode itself
    dev = np.asarray(after.z) - mean
    maha = np.einsum("ni,ij,nj->n", dev, np.linalg.inv(cov), dev)
    assert np.all((maha > 0) & (maha < 20 * 1.5**2))
    run = jax.jit(jax.vmap(lambda s: jax.lax.scan(lambda s, _: it(s, None), s, None,
                                                  length=50)))
    _, out = run(after)
    assert np.asarray(out[3]).mean() < (8 if dense else 20)


def test_mode_search_gives_up_cleanly():
    """A start where the potential is not finite, or a potential with no minimum (a
    linear slope): the search stops, the chain keeps a finite position and a valid
    metric (the identity, or clipped variances), and sampling goes on."""
    def slope(u, data):  # no minimum: Newton's steps are capped, the search gives up
        return jnp.where(u[0] > 5.0, jnp.inf, u[1] + 0.5 * u[0] ** 2)

    it = make_iteration(slope, 100, True, 0.8, 10)
    z0 = np.array([[0.5, 0.0], [7.0, 0.0]])  # the second start has an infinite potential
    state = initial_state(z0, np.broadcast_to(np.eye(2), (2, 2, 2)).copy(),
                          np.zeros((2, 2), np.uint32), find_mode=True)
    after, out = jax.jit(jax.vmap(lambda s: it(s, None)))(state)
    imm = np.asarray(after.imm)
    assert np.all(np.isfinite(np.asarray(after.z))) and np.all(np.isfinite(imm))
    np.testing.assert_array_equal(imm[1], np.eye(2))  # no finite start: unchanged
    np.testing.assert_array_equal(np.asarray(after.z)[1], z0[1])
    assert np.all(np.linalg.eigvalsh(imm[0]) > 0) and np.linalg.eigvalsh(imm[0]).max() <= 4.0
    assert int(np.asarray(out[3])[0]) < 30 * 4 + 50  # bounded work


def test_tree_depth_caps_the_trajectory():
    *_, (z, pe, div, steps, acc, eps) = _run(True, 0, 50, chains=1, max_depth=2)
    # no warm-up: the searched step size is used throughout; at most 2^2 - 1 leapfrogs
    assert steps.max() <= 3 and steps.min() >= 1
    assert np.all(eps == eps[0, 0])


def test_stan_adaptation_windows():
    collect, end = adaptation_schedule(1000)
    # 75 step-size-only iterations, windows 25, 50, 100, 200, 500, then 50 at the end
    assert list(np.flatnonzero(end) + 1) == [100, 150, 250, 450, 950]
    assert not collect[:75].any() and collect[75:950].all() and not collect[950:].any()
    collect, end = adaptation_schedule(100)  # short: 15 % / 10 % buffers
    assert not collect[:15].any() and collect[15:90].all() and list(np.flatnonzero(end)) == [89]
    collect, end = adaptation_schedule(10)
    assert not collect.any() and not end.any()


def test_native_and_numpyro_kernels_agree():
    from jxspec_nb.inference import model_with_priors
    from jxspec_nb.inference._synthetic import ToyModel, toy_observation

    model = ToyModel()
    obs = toy_observation(model, {"toyabs.nH": 0.5, "powerlaw.PhoIndex": 1.8,
                                  "powerlaw.norm": 1e-3}, seed=11, exposure=3e3)
    spec = model_with_priors(model, {"toyabs.nH": "Uniform(0, 2)",
                                     "powerlaw.PhoIndex": "Uniform(0, 4)",
                                     "powerlaw.norm": "LogUniform(1e-5, 1)"})
    opts = dict(chains=4, warmup=500, samples=1000, progress=False)
    ours = fit(spec, obs, seed=4, **opts)
    ref = fit(spec, obs, seed=5, kernel="numpyro", **opts)
    assert ours.extra["kernel"] == "native" and ref.extra["kernel"] == "numpyro"
    a, b = ours.summary(), ref.summary()
    for name in b.index:
        sd = b.loc[name, "sd"]
        for col in ("median", "q16", "q84"):
            assert abs(a.loc[name, col] - b.loc[name, col]) < 0.15 * sd, (name, col)
        assert abs(a.loc[name, "sd"] / sd - 1) < 0.1, name
    assert (a["r_hat"] < 1.01).all()
    assert ours.draws.sample_stats["diverging"].sum() == 0
    with pytest.raises(FitError, match="kernel='stan'"):
        fit(spec, obs, kernel="stan", **opts)


HANG_SCRIPT = """
import sys
from jxspec_nb import datasets, fit, model_with_priors
from jxspec_nb.__main__ import DEMO_MODEL  # tbabs*(powerlaw + bbodyrad), the paper's priors
obs = datasets.load("ngc7793_ulx4", band=(0.5, 10))
spec = model_with_priors(DEMO_MODEL)
r = fit(spec, obs, background="bayesian", chains=4, warmup=30, samples=10, seed=0,
        progress=False, kernel=sys.argv[1])
print(r.extra["chain_method"], r.draws.posterior["tbabs.nH"].shape)
"""


@pytest.mark.parametrize("kernel", ["native", "numpyro"])
def test_parallel_chains_with_a_bayesian_background_finish(kernel):
    """109 parameters (a background rate per bin) on two CPU devices: a batched Cholesky
    factorisation in numpyro's vmapped initialisation used to fan out over XLA's
    thread pool on both devices at once and deadlock it (the fit hung, 0 % CPU).
    Run in a subprocess, so that a regression fails instead of hanging the suite."""
    import subprocess
    import sys

    import jax

    if jax.local_device_count() < 2:
        pytest.skip("needs two CPU devices (two cores)")
    try:
        out = subprocess.run([sys.executable, "-c", HANG_SCRIPT, kernel], capture_output=True,
                             text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail(f"NUTS ({kernel}) with a Bayesian background hung on two devices")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "parallel (4, 10)"
