"""Every method on a fast synthetic problem agrees with NUTS; MLE finds ULX-4's global minimum."""

import warnings

import numpy as np
import pytest

from jxspec_nb.errors import FitError
from jxspec_nb.inference import fit, model_with_priors
from jxspec_nb.inference._synthetic import ToyModel, toy_observation

TRUTH = {"toyabs.nH": 0.5, "powerlaw.PhoIndex": 1.8, "powerlaw.norm": 1e-3}
PRIORS = {"toyabs.nH": "Uniform(0, 2)", "powerlaw.PhoIndex": "Uniform(0, 4)",
          "powerlaw.norm": "LogUniform(1e-5, 1)"}


@pytest.fixture(scope="module")
def problem():
    model = ToyModel()
    obs = toy_observation(model, TRUTH, seed=11, exposure=3e3)
    return model_with_priors(model, PRIORS), obs


@pytest.fixture(scope="module")
def reference(problem):
    spec, obs = problem
    return fit(spec, obs, chains=4, warmup=500, samples=500, seed=1, progress=False)


@pytest.fixture(scope="module")
def mle(problem):
    spec, obs = problem
    return fit(spec, obs, method="mle", samples=2000, seed=2, progress=False, starts=8,
               screen=128)


def _agree(result, reference, tol_median, tol_sd=0.35):
    ref = reference.summary()
    got = result.summary()
    for name in ref.index:
        sd = ref.loc[name, "sd"]
        assert abs(got.loc[name, "median"] - ref.loc[name, "median"]) < tol_median * sd, name
        assert abs(got.loc[name, "sd"] / sd - 1) < tol_sd, name


def test_nuts_converges_and_covers_truth(reference):
    s = reference.summary()
    assert (s["r_hat"] < 1.01).all()
    assert (s["ess_bulk"] > 400).all()
    for name, value in TRUTH.items():
        assert s.loc[name, "q16"] - 3 * s.loc[name, "sd"] < value < \
            s.loc[name, "q84"] + 3 * s.loc[name, "sd"]
    assert reference.draws.sample_stats["diverging"].sum() == 0
    assert reference.extra["mean_leapfrog_steps"] < 10  # dense mass + log-space norm
    assert reference.fit_statistic == pytest.approx(
        reference.fit_statistic, rel=0) and reference.dof == 37


def test_chains_run_in_parallel_over_cpu_devices(problem, reference):
    """jxspec_nb gives JAX one CPU device per core; NUTS splits the chains over them.

    The split changes only where a chain runs: the same seed gives the same chains as
    running them one after the other on one device (to rounding: XLA may compile the
    two programs with different summation orders, which chaotic trajectories amplify).
    """
    import jax

    from jxspec_nb._jax import _cpu_count

    spec, obs = problem
    if _cpu_count() >= 2:  # CI has 2 cores
        assert jax.local_device_count() >= 2
    assert reference.extra["chain_method"] == (
        "parallel" if jax.local_device_count() >= 2 else "sequential")
    short = dict(chains=3, warmup=150, samples=100, seed=5, progress=False)  # 3: padded
    par = fit(spec, obs, chain_method="parallel", **short)
    seq = fit(spec, obs, chain_method="sequential", **short)
    a = par.draws.posterior["powerlaw.PhoIndex"]
    b = seq.draws.posterior["powerlaw.PhoIndex"]
    assert a.shape == b.shape == (3, 100)
    assert np.allclose(a[:, :20], b[:, :20], rtol=1e-6)
    with pytest.raises(Exception, match="chain_method"):
        fit(spec, obs, chain_method="threads", **short)


def test_nuts_starts_from_laplace_fit(problem, reference):
    """start="laplace": the chains start around the posterior mode and warm up with the
    Laplace covariance as their first mass matrix, which must match the posterior."""
    from jxspec_nb.inference.compile import get_problem
    from jxspec_nb.inference.methods.mle import x_to_u
    from jxspec_nb.inference.methods.nuts import laplace_start

    spec, obs = problem
    prob, data = get_problem(spec, [obs])
    u0, imm = laplace_start(prob, data, 0, None, np.random.default_rng(0), 4, True)
    assert u0.shape == (4, prob.dim) and imm.shape == (4, prob.dim, prob.dim)
    assert np.all(np.linalg.eigvalsh(imm[0]) > 0)
    x = np.column_stack([np.ravel(reference.draws.posterior[n])[::4]
                         for n in prob.names])
    ratio = np.diag(imm[0]) / x_to_u(prob, x).var(axis=0)
    assert np.all((ratio > 0.5) & (ratio < 2)), ratio
    _, diag = laplace_start(prob, data, 0, None, np.random.default_rng(0), 2, False)
    assert diag.shape == (2, prob.dim) and np.allclose(diag[0], np.diag(imm[0]))
    assert reference.extra["start"] == "newton"  # the default (native kernel)
    short = dict(chains=2, warmup=150, samples=100, seed=3, progress=False)
    lap = fit(spec, obs, start="laplace", **short)
    assert lap.extra["start"] == "laplace"
    assert (lap.summary()["r_hat"] < 1.05).all()
    with pytest.raises(FitError, match="start='mode'"):
        fit(spec, obs, start="mode", **short)
    with pytest.raises(FitError, match="start='newton' needs kernel='native'"):
        fit(spec, obs, start="newton", kernel="numpyro", **short)
    assert fit(spec, obs, kernel="numpyro", **short).extra["start"] == "prior"


def test_mle_agrees_with_nuts(problem, reference, mle):
    spec, obs = problem
    res = mle
    ref = reference.summary()
    for name in spec.free_names:
        sd = ref.loc[name, "sd"]
        assert abs(res.best_fit[name] - ref.loc[name, "median"]) < 0.5 * sd
        assert res.extra["errors"][name] == pytest.approx(sd, rel=0.3)
        lo, hi = res.extra["intervals"][name]
        assert lo < res.best_fit[name] < hi
        assert (hi - lo) / 2 == pytest.approx(sd, rel=0.3)
    # the statistic at the optimum is the lowest of all draws
    assert res.fit_statistic <= reference.fit_statistic + 1e-6
    assert res.extra["starts_at_minimum"] >= 1


def test_vi_agrees_with_nuts(problem, reference):
    spec, obs = problem
    res = fit(spec, obs, method="vi", steps=1500, samples=2000, seed=3, progress=False)
    _agree(res, reference, 0.3)
    assert res.elbo.shape == (1500,) and np.isfinite(res.elbo).all()
    assert res.elbo[-100:].mean() > res.elbo[:10].mean() - 1.0
    # the draws were importance-resampled: the weights' Pareto shape was trustworthy
    assert res.extra["reweighted"] and res.extra["pareto_k"] < 0.7
    assert 100 < res.extra["importance_ess"] <= 4 * 2000
    # a mean-field guide misses the nH-index-norm correlation: its weights are too
    # heavy-tailed to correct it, so the guide's own draws are kept, with a warning
    with pytest.warns(RuntimeWarning, match="Pareto k-hat"):
        mf = fit(spec, obs, method="vi", steps=500, samples=1000, seed=3, progress=False,
                 guide="normal", optimizer="adamw")
    assert not mf.extra["reweighted"] and mf.extra["pareto_k"] >= 0.7
    assert mf.summary().loc["powerlaw.PhoIndex", "median"] == pytest.approx(
        reference.summary().loc["powerlaw.PhoIndex", "median"],
        abs=0.5 * reference.summary().loc["powerlaw.PhoIndex", "sd"])


def test_vi_names_a_bad_guide_or_optimiser(problem):
    spec, obs = problem
    with pytest.raises(FitError, match="unknown guide 'gauss'.*'mvn' or 'normal'"):
        fit(spec, obs, method="vi", steps=10, samples=10, progress=False, guide="gauss")
    with pytest.raises(FitError, match="unknown optax optimiser 'adma'"):
        fit(spec, obs, method="vi", steps=10, samples=10, progress=False, optimizer="adma")


def test_psis_matches_arviz_and_flags_heavy_tails():
    import arviz as az

    from jxspec_nb.results._diagnostics import psis

    rng = np.random.default_rng(0)
    for scale in (0.3, 1.0, 2.0):
        raw = rng.normal(size=4000) * scale
        lw, k = psis(raw)
        ref_lw, ref_k = az.psislw(raw.copy())
        np.testing.assert_allclose(lw, ref_lw, atol=1e-12)
        assert k == pytest.approx(float(ref_k), abs=1e-12)
        assert np.exp(lw).sum() == pytest.approx(1.0)
    assert psis(rng.normal(size=4000) * 0.3)[1] < 0.5  # light tails
    assert psis(3.0 * np.log(np.abs(rng.standard_t(1.2, size=4000))))[1] > 0.7  # heavy


def test_aies_agrees_with_nuts(problem, reference):
    spec, obs = problem
    res = fit(spec, obs, method="aies", warmup=300, samples=300, seed=4, progress=False)
    assert res.draws.shape == (32, 300)
    _agree(res, reference, 0.3)
    de = fit(spec, obs, method="aies", warmup=200, samples=200, seed=4, progress=False,
             moves={"de": 1.0}, chunk=100)
    _agree(de, reference, 0.4, tol_sd=0.5)


def test_aies_kernel_keeps_numpyros_draws():
    """Our AIES keeps each walker's log density in its state instead of evaluating the
    current walkers again: same keys, same draws and acceptance as numpyro's AIES, and
    half the log-density evaluations."""
    from numpyro.infer import AIES

    from jxspec_nb._jax import jax, jnp
    from jxspec_nb.inference.methods.aies import _caching_aies

    cov = np.array([[1.0, 0.8, 0.1], [0.8, 1.0, 0.2], [0.1, 0.2, 2.0]])
    prec = jnp.asarray(np.linalg.inv(cov))
    calls = {"n": 0}

    def count() -> None:
        calls["n"] += 1

    def potential(u):  # a hard wall at u[2] = 3: -inf log density is handled the same
        jax.debug.callback(count)  # at run time, once per batched evaluation
        return 0.5 * u @ prec @ u + jnp.where(u[2] > 3.0, jnp.inf, 0.0)

    runs = []
    for cls in (AIES, _caching_aies()):
        kernel = cls(potential_fn=potential, moves={AIES.StretchMove(): 0.5,
                                                    AIES.DEMove(): 0.5})
        keys = np.random.default_rng(0).integers(0, 2**32, (16, 2), dtype=np.uint32)
        start = np.random.default_rng(1).normal(size=(16, 3))
        state = kernel.init(jnp.asarray(keys), 100, init_params=jnp.asarray(start))
        calls["n"] = 0

        def body(s, _, kernel=kernel):
            s = kernel.sample(s, (), {})
            return s, (s.z, s.inner_state.accept_prob)

        final, (z, acc) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=300))(state)
        jax.effects_barrier()
        runs.append((np.asarray(z), np.asarray(acc), calls["n"],
                     float(final.inner_state.mean_accept_prob)))
    (z0, a0, n0, m0), (z1, a1, n1, m1) = runs
    np.testing.assert_array_equal(z0, z1)
    np.testing.assert_array_equal(a0, a1)
    assert m0 == m1 and 0.2 < m1 < 0.8
    # numpyro evaluates the proposals and the current walkers at each of the 600
    # half-steps (two batched evaluations); ours the proposals, and the whole ensemble
    # once at the start
    assert (n0, n1) == (600 * 2, 600 + 1)
    # the walkers sample the Gaussian (truncated at 3 in the last coordinate)
    flat = z1[100:].reshape(-1, 3)
    assert np.all(flat[:, 2] <= 3.0)
    assert np.corrcoef(flat[:, 0], flat[:, 1])[0, 1] == pytest.approx(0.8, abs=0.15)


def test_nested_sampling_evidence(problem, reference, mle):
    from jxspec_nb.inference.compile import get_problem

    spec, obs = problem
    res = fit(spec, obs, method="ns", samples=2000, seed=5, progress=False)
    _agree(res, reference, 0.3)
    assert np.isfinite(res.log_evidence) and 0 < res.log_evidence_err < 1.0
    # equally weighted draws in random order: diagnostics see independent draws (in the
    # nested samples' likelihood order split R-hat read 1.1-1.2 and tail ESS ~20-100)
    summary = res.summary()
    assert summary["r_hat"].max() < 1.01 and summary["ess_tail"].min() > 1000
    # one run, its slice directions from the Laplace approximation at the mode
    assert res.extra["directions"] == "laplace"
    # defaults: 3 slice steps per parameter, 5 points per parameter replaced together
    assert res.extra["slices"] == 3 * len(spec.prior_defs)
    assert res.extra["replacement_width"] == 5 * len(spec.prior_defs)
    # jaxns' depth loop compiled with XLA's fusion emitters when jxspec_nb turned them
    # off for the process (the one program that compiles faster with them)
    import jaxns.core

    from jxspec_nb._jax import XLA_FLAGS_ADDED

    emitters_off = "--xla_cpu_use_fusion_emitters=false" in XLA_FLAGS_ADDED
    assert getattr(jaxns.core._run_depth, "_jxspec_nb_emitters", False) == emitters_off
    with pytest.raises(FitError, match="directions='pca'.*'laplace'.*'gmm'.*'iso'"):
        fit(spec, obs, method="ns", directions="pca", progress=False)
    for bad in ({"slices": 0}, {"replacement_width": 2.5}, {"live_points": -3}):
        with pytest.raises(FitError, match=f"{next(iter(bad))}=.*whole number >= 1"):
            fit(spec, obs, method="ns", progress=False, **bad)
    # Laplace approximation of the evidence around the maximum-likelihood point
    prob, data = get_problem(spec, [obs])
    x = np.array([mle.best_fit[n] for n in prob.names])
    log_prior = -np.log(2.0) - np.log(4.0) - np.log(x[2]) - np.log(np.log(1e5))
    _, logdet = np.linalg.slogdet(mle.extra["covariance"])
    log_z = float(prob.loglik_values(x, data)) + log_prior + 1.5 * np.log(2 * np.pi) + 0.5 * logdet
    assert res.log_evidence == pytest.approx(log_z, abs=3 * res.log_evidence_err + 0.3)


def test_nested_sampling_laplace_directions_match_the_posterior(problem, reference):
    """The slice-direction law from the Laplace approximation has the posterior's
    covariance in the unit cube (NUTS draws mapped through each prior's CDF) and the
    likelihood's height at the mode."""
    from jxspec_nb.inference.compile import get_problem
    from jxspec_nb.inference.methods import nested

    spec, obs = problem
    prob, data = get_problem(spec, [obs])
    law = nested._laplace_directions(prob, data, seed=0)
    assert law is not None and bool(law.enabled) and bool(law.valid[0])
    cov = np.asarray(law.mixture.covariances[0])
    post = reference.idata.posterior
    q = np.column_stack([p.to_unit(np.asarray(post[n]).ravel())
                         for n, p in zip(prob.names, prob.priors, strict=True)])
    ref = np.cov(q.T)
    sd, sd_ref = np.sqrt(np.diag(cov)), np.sqrt(np.diag(ref))
    assert np.allclose(sd, sd_ref, rtol=0.25)
    assert np.allclose(cov / np.outer(sd, sd), ref / np.outer(sd_ref, sd_ref), atol=0.1)
    assert np.allclose(np.asarray(law.centres[0]), q.mean(axis=0), atol=0.5 * sd_ref)
    # the posterior mode in sampling space is not the likelihood's peak: close to it
    x = np.array([np.median(np.asarray(post[n])) for n in prob.names])
    assert float(law.log_L_at_mean[0]) == pytest.approx(float(prob.loglik_values(x, data)),
                                                        abs=1.0)


def _ns_logging_compiles(spec, obs, caplog, seed, **kw):
    """A short nested-sampling fit with JAX's compile log captured in ``caplog``."""
    import logging

    import jax

    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            return fit(spec, obs, method="ns", samples=500, seed=seed, progress=False, **kw)
    finally:
        jax.config.update("jax_log_compiles", False)


def test_nested_sampling_pilot_and_main_share_one_depth_loop(problem, caplog, monkeypatch):
    """Without Laplace directions (here: the mode's covariance made unusable) the fit
    says so and falls back to an isotropic pilot run mapping the contours and a main
    run with directions fitted to it; the two trace jaxns' depth loop once between
    them (each trace is a compile of ~7 s on ULX-4)."""
    from jxspec_nb.inference.methods import nested

    monkeypatch.setattr(nested, "_laplace_directions", lambda *a: None)
    _, obs = problem
    # priors of their own: a new problem, so nothing is compiled for it yet
    spec = model_with_priors(ToyModel(), {**PRIORS, "toyabs.nH": "Uniform(0, 3)"})
    with pytest.warns(RuntimeWarning, match="no Laplace slice directions.*isotropic pilot"):
        res = _ns_logging_compiles(spec, obs, caplog, seed=6)
    lowered = [r for r in caplog.records
               if "MLIR module conversion jit(_run_depth)" in r.getMessage()]
    assert res.extra["directions"] == "gmm"
    assert len(lowered) == 1
    # asked for, the pilot runs without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        again = fit(spec, obs, method="ns", samples=300, seed=1, progress=False,
                    directions="gmm", steps=2)
    assert again.extra["directions"] == "gmm"


def test_nested_sampling_precompiles_jaxns_boundary_programs(problem, caplog, monkeypatch):
    """The programs jaxns calls between depth epochs are compiled by a worker thread
    from the scheduled state's shapes; with the worker waited for, the run itself
    compiles none of them again (a shape that differed would compile twice)."""


    from jxspec_nb.inference.methods import nested

    _, obs = problem
    spec = model_with_priors(ToyModel(), {**PRIORS, "toyabs.nH": "Uniform(0, 2.5)"})
    original = nested._precompile
    futures = []

    def precompile_and_wait(*args):
        fut = original(*args)
        futures.append(fut)
        fut.result()  # raises what the worker raised (JXSPEC_NB_DEBUG_NS is set)
        return fut

    monkeypatch.setenv("JXSPEC_NB_DEBUG_NS", "1")
    monkeypatch.setattr(nested, "_precompile", precompile_and_wait)
    res = _ns_logging_compiles(spec, obs, caplog, seed=7)
    assert res.extra["directions"] == "laplace" and len(futures) == 1
    for name in ("_run_depth", "_start_schedule_round", "_refresh_likelihood_order",
                 "_continue_schedule_round", "_expected_evidence_scalars", "_to_result"):
        compiled = [r for r in caplog.records
                    if f"XLA compilation of jit({name})" in r.getMessage()]
        assert len(compiled) == 1, name
        assert compiled[0].threadName.startswith("jxspec-compile") or name in (
            "_run_depth", "_start_schedule_round"), name


def test_mle_finds_ulx4_global_minimum(shared_data):
    from jxspec_nb import datasets
    from jxspec_nb.__main__ import DEMO_MODEL  # the paper's ULX-4 model and priors

    spec = model_with_priors(DEMO_MODEL)
    obs = datasets.load("ngc7793_ulx4", bkg=None)
    res = fit(spec, obs, method="mle", starts=8, screen=256, errors="covariance",
              samples=100, progress=False)
    # Levenberg-Marquardt from the defaults stops at kT on its lower limit, C-stat 261
    assert res.fit_statistic < 100.0 and res.dof == 99
    assert 0.6 < res.best_fit["bbodyrad.kT"] < 0.9
    assert 1.8 < res.best_fit["powerlaw.PhoIndex"] < 2.3


def test_batch_fit_recovers_truths(problem):
    from jxspec_nb.inference import fit_batch

    spec, _ = problem
    model = spec.model
    fakes = [toy_observation(model, TRUTH, seed=100 + k, name="batch") for k in range(40)]
    res = fit_batch(spec, fakes)
    assert res.best.shape == (40, 3) and np.isfinite(res.errors).all()
    assert res.compile_seconds > 0  # first call compiles (timed apart from the fits)
    again = fit_batch(spec, fakes[:40], seed=3)
    assert again.compile_seconds == 0.0  # same set-up and size: compiled code reused
    assert np.allclose(again.best, res.best, rtol=1e-3, atol=1e-6)  # same optima
    pull = (res.best - np.array([TRUTH[n] for n in res.names])) / res.errors
    assert np.all(np.abs(pull.mean(axis=0)) < 0.6)
    assert np.all((pull.std(axis=0) > 0.6) & (pull.std(axis=0) < 1.5))
    assert res.spectra_per_second > 0 and (res.statistic > 0).all()
    with pytest.raises(Exception, match="starts"):
        fit_batch(spec, fakes, starts=1)
    # another set-up (fewer channels) is refused, naming the spectrum
    odd = toy_observation(model, TRUTH, seed=7, name="odd", n_chan=30)
    with pytest.raises(Exception, match="'odd'.*counts"):
        fit_batch(spec, fakes[:3] + [odd])
    # spectra with their own responses of one shape (other exposures): folds stacked
    mixed = [toy_observation(model, TRUTH, seed=200 + k, exposure=e, name="mixed")
             for k, e in enumerate([3e3, 1e4, 3e4, 1e4])]
    res_m = fit_batch(spec, mixed)
    assert np.isfinite(res_m.errors).all()
    # a 10x longer exposure measures the photon index ~sqrt(10) more precisely
    assert res_m.errors[2, 1] < 0.5 * res_m.errors[0, 1]


def test_batch_fit_solves_without_lapack():
    """fit_batch's Newton steps solve their small systems in plain array operations:
    vmapped over spectra a LAPACK solve became a batched call that spreads over XLA's
    CPU thread pool, and with the spectra split over two devices the pool deadlocked
    (4000 ULX-4 spectra hung). Same answers as numpy's solve, pivoting included."""
    import jax

    from jxspec_nb.inference.batch import _solve_small

    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 5, 5))
    a[:, 0, 0] = 0.0  # needs a row exchange
    b = rng.normal(size=(64, 5))
    solve = jax.jit(jax.vmap(_solve_small))
    x = np.asarray(solve(a, b))
    assert np.allclose(x, np.linalg.solve(a, b[..., None])[..., 0], rtol=1e-9, atol=1e-12)
    assert not np.isfinite(np.asarray(_solve_small(np.zeros((3, 3)), np.ones(3)))).any()
    assert "lapack" not in solve.lower(a, b).as_text().lower()


@pytest.mark.slow
def test_simulation_based_calibration():
    """Over 120 spectra simulated from the prior, 68 % intervals cover the truth 63-73 %."""
    from jxspec_nb.inference._distributions import PriorDef

    model = ToyModel()
    priors = {"toyabs.nH": PriorDef("Uniform", (0.1, 1.0)),
              "powerlaw.PhoIndex": PriorDef("Uniform", (1.0, 3.0)),
              "powerlaw.norm": PriorDef("LogUniform", (3e-4, 3e-3))}
    spec = model_with_priors(model, priors)
    rng = np.random.default_rng(2024)
    hits, n = 0, 0
    for k in range(120):
        truth = {name: float(p.sample(rng, 1)[0]) for name, p in priors.items()}
        obs = toy_observation(model, truth, seed=1000 + k, name="sbc")
        res = fit(spec, obs, chains=2, warmup=300, samples=300, seed=k, progress=False)
        s = res.summary()
        for name, value in truth.items():
            hits += int(s.loc[name, "q16"] <= value <= s.loc[name, "q84"])
            n += 1
    assert 0.63 <= hits / n <= 0.73


def test_jaxns_import_leaves_no_log_file_or_root_handlers(tmp_path):
    """jaxns 3 configures the root logger and opens ./application.log on import."""
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from jxspec_nb.inference.methods.nested import _import_jaxns_quietly\n"
        "_import_jaxns_quietly()\n"
        "import jaxns\n"
        "print(len(logging.getLogger().handlers))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "0"
    assert not (tmp_path / "application.log").exists()
