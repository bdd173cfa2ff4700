"""Nested sampling with jaxns 3 (race-tree nested sampling), for the evidence.

The jaxns model draws one unit-cube vector ``q`` and maps it through each
prior's inverse CDF (:meth:`PriorDef.from_unit`); the likelihood is the
problem's (Bayesian background rates are profiled, as in W-stat). jaxns runs
compiled depth epochs between Python goal checks: progress (log Z so far,
likelihood evaluations) is reported there, and a KeyboardInterrupt raised by the
progress callback stops the run at that boundary, keeping what was sampled.
The weighted samples are resampled to ``samples`` equally weighted draws.

Slice directions. jaxns' slice sampler starts with isotropic directions in the
unit cube; for the strongly correlated posteriors of X-ray spectra (nH, photon
index and normalisation move together) a few tens of isotropic slices do not
mix along the long axis of the likelihood contours, and a run's posterior comes
out shifted along that axis by a seed-dependent fraction of a standard deviation
(measured on ULX-4: up to 0.5 sd in the median), though its evidence is fine.
With ``directions="laplace"`` (the default) the slice directions come from the
Laplace approximation at the posterior mode (:func:`_laplace_directions`: the mode
search and Hessian NUTS starts from, carried to the unit cube), found while jaxns'
depth loop compiles, and one run gives the result. With ``directions="gmm"`` (and
as the fallback when the mode's covariance is not usable) a pilot run with
isotropic directions maps the contours, a Gaussian fitted to its weighted samples
(``State.fit_gmm_directions``) gives the slice directions, and a fresh run with
those directions, sharing the pilot's compiled code, gives the result; the pilot's
samples are discarded. On ULX-4 (seeds 0-3, against jaxspec's long NUTS run, in
posterior sd) the Laplace directions give 0.03-0.08 in the median and 0.03-0.13 in
the 16/84 % quantiles, as the pilot's do (0.03-0.06, 0.05-0.13), with 183k
likelihood evaluations instead of 583k (the pilot alone took 397k): the fit takes
22-24 s instead of 38-40 s (cold compilation cache, 2 cores). ``directions="iso"``
keeps the single isotropic run (fine for the evidence, rough for the posterior).

Options: ``dlogZ`` (stop when the remaining evidence is below this, jaxns'
default if None), ``max_samples`` (buffer size, jaxns' default if None),
``live_points`` (jaxns' root allocation degree, 30 per parameter if None),
``slices`` (slice steps per replacement, 3 per parameter if None),
``replacement_width`` (points replaced together in each compiled step, 5 per
parameter, at most the live points, if None; jaxns' own default is 10 per
parameter),
``directions`` ("laplace", "gmm" or "iso"). ``steps`` caps the number of goal iterations
of each run.

Slices per parameter. Measured with the pilot run ("gmm") on ULX-4 against a
4 x 10000 NUTS reference (seeds 0-3, worst of the five parameters, in posterior sd;
~870 effective draws, so ~0.05 sd of the differences is Monte Carlo noise): 5 per parameter (jaxns'
default) 0.05-0.10 in the median and 0.08-0.16 in the 16/84 % quantiles, with
0.85-1.08M likelihood evaluations; 3 per parameter 0.07-0.09 and 0.07-0.11 with
0.44-0.68M; 2 per parameter 0.04-0.09 and 0.08-0.17 with 0.37-0.42M. No setting
is told apart from another at this precision, and the log-evidences agree within
their errors (-381.4 to -382.9, +- 0.34); 3 per parameter takes 40 % less time than
5 (27-35 s against 49-56 s for the fit). Replacing 5 points per parameter together
instead of jaxns' 10 saves another 15-20 % (seed 0, fit: 33 s against 40 s; 3 and 2
per parameter took 33 and 36 s) at the same accuracy: seeds 0-3, 0.03-0.06 sd in the
median, 0.05-0.13 in the quantiles. With Laplace directions 2 per parameter (116-123k
evaluations against 183k) gave 0.04-0.06 and 0.04-0.10 but saved little time (22.2-23.4
against 22-24 s: jaxns' compilation and its own work per step dominate), so 3 stays.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._jax import jax, jnp
from ...errors import FitError
from ..compile import Problem
from ._common import (
    Timer,
    background,
    make_result,
    pointwise_batched,
    systematic_resample,
    warm_pointwise,
)
from .mle import posterior_mode, x_to_u

__all__ = ["run"]


def _import_jaxns_quietly() -> None:
    """Import jaxns without its logging side effects.

    jaxns 3 calls ``logging.config.dictConfig`` at import time: it adds handlers
    to the *root* logger and opens ``./application.log`` in the current folder.
    We keep its console logger (at WARNING) and drop the rest.
    """
    import logging
    import logging.config
    import sys

    if "jaxns.logging" in sys.modules:
        return
    original = logging.config.dictConfig

    def without_files_or_root(config: dict) -> None:
        config = dict(config)
        config.pop("root", None)
        handlers = {
            name: spec
            for name, spec in config.get("handlers", {}).items()
            if not str(spec.get("class", "")).endswith("FileHandler")
        }
        config["handlers"] = handlers
        config["loggers"] = {
            name: {**spec, "handlers": [h for h in spec.get("handlers", []) if h in handlers]}
            for name, spec in config.get("loggers", {}).items()
        }
        original(config)

    logging.config.dictConfig = without_files_or_root
    try:
        import jaxns.logging  # noqa: F401
    finally:
        logging.config.dictConfig = original
    logging.getLogger("jaxns").setLevel(logging.WARNING)


def _model(problem: Problem) -> Any:
    _import_jaxns_quietly()
    import tensorflow_probability.substrates.jax as tfp
    from jaxns.model import Model
    from jaxns.priors import Prior

    k = problem.n_free
    priors = problem.priors

    def prior_model(data: Any) -> Any:
        q = Prior(tfp.distributions.Uniform(low=jnp.zeros(k), high=jnp.ones(k)),
                  name="q").realise()
        x = jnp.stack([p.from_unit(q[i]) for i, p in enumerate(priors)])
        return problem._loglik_values_total(x, data, fast=True)  # single-precision fold

    return Model(prior_model=prior_model)


def _fusion_emitter_depth_loop() -> None:
    """Compile jaxns' depth loop with XLA's MLIR fusion emitters.

    jxspec_nb turns XLA's CPU fusion emitters off for the process
    (:mod:`jxspec_nb._jax`: most programs, jaxns' other ones included, compile in
    half to two thirds of the time), but jaxns' depth loop is the exception: 8.8 s
    to compile without them against 6.3-6.6 s with them on ULX-4 (2 cores), the same speed
    either way. So the depth loop that ``jaxns.core`` calls is replaced, once, by the
    same function jitted with the per-program option that turns them back on (same
    static arguments; exp, log and the other functions it uses agree to the last bit
    either way). Nothing changes when jxspec_nb did not turn them off, or when jaxns'
    internals are not as expected.
    """
    from ..._jax import XLA_FLAGS_ADDED

    if "--xla_cpu_use_fusion_emitters=false" not in XLA_FLAGS_ADDED:
        return
    try:
        import jaxns.core as core

        loop = core._run_depth
        if getattr(loop, "_jxspec_nb_emitters", False):
            return
        fn = loop.__wrapped__
        patched = jax.jit(fn, inline=True, static_argnames=("max_samples", "max_batches"),
                          compiler_options={"xla_cpu_use_fusion_emitters": True})
        patched._jxspec_nb_emitters = True  # type: ignore[attr-defined]
        core._run_depth = patched
    except Exception:  # noqa: BLE001  (jaxns moved on: its own depth loop)
        import os

        if os.environ.get("JXSPEC_NB_DEBUG_NS"):
            raise


def _precompile(sampler: Any, fresh: Any, depth: Any,
               meanwhile: Any = None) -> Any:
    """Compile jaxns' programs ahead of the run: the loop now, its boundaries beside it.

    A cold run compiles jaxns' depth loop (~6 s on 2 cores) and then, one after the
    other as the run first reaches them, the programs it calls between depth epochs
    (refreshing the likelihood order, publishing seeds, the depth condition, the next
    schedule round, the goal's evidence, the final result: ~6 s together), each while
    the other core idles. Here the main thread compiles the round planner and traces
    the depth loop, XLA compiles the loop in a worker thread while the main thread
    traces and lowers the boundary programs (jaxns' functions are traced by the main
    thread only), and a worker compiles those while the loop runs on one core. Their
    arguments have the shapes of the scheduled state, which jaxns keeps
    stable across epochs; ``eval_shape`` of the planner gives them. Measured on
    ULX-4 (2 cores, cold caches): the fit 42.3 -> 40.5 s. A boundary program not
    ready in time is compiled by the main thread as before; if jaxns' internals
    differ from what is expected here, nothing is precompiled (``JXSPEC_NB_DEBUG_NS``
    set: the error is raised). ``meanwhile()``, if given, runs in the main thread
    while the loop compiles (the Laplace directions' mode search). Returns the
    worker's future (None when nothing was compiled).
    """
    import os

    try:
        from jaxns.algorithm.depth import (
            _continue_schedule_round,
            _depth_condition_reached,
            _publish_seed_source,
            _refresh_likelihood_order,
            _start_schedule_round,
        )
        from jaxns.core import _run_depth  # the loop the run calls (patched above)
        from jaxns.state import _expected_evidence_scalars, _to_result

        config = sampler._resolve_config(fresh.model, fresh.args, fresh.params)
        width = int(config.replacement_width)
        plan_kw = {"replacement_width": width, "allocation_target": sampler.allocation_target,
                   "root_degree": int(config.root_allocation_degree),
                   "delta_K": int(config.delta_K)}
        sched = jax.eval_shape(functools.partial(_start_schedule_round, **plan_kw),
                               fresh, depth)
        _start_schedule_round.lower(fresh, depth, **plan_kw).compile()
        loop = _run_depth.lower(sched, config.sampler, depth, max_samples=config.max_samples,
                                max_batches=None)
        boundary = dataclasses.replace(sched, scheduler_data=None)  # at a goal check
        jobs = [
            (_refresh_likelihood_order, (sched,), {}),
            (_depth_condition_reached, (sched, depth), {}),
            (_publish_seed_source, (sched,), {}),
            (_continue_schedule_round, (sched, sched.scheduler_data, depth),
             {"replacement_width": width}),
            (_expected_evidence_scalars, (boundary,), {}),
            (_depth_condition_reached, (boundary, depth), {}),
            (_to_result, (boundary,), {}),
        ]
    except Exception:  # noqa: BLE001  (jaxns moved on: its run compiles on demand)
        if os.environ.get("JXSPEC_NB_DEBUG_NS"):
            raise
        if meanwhile is not None:
            meanwhile()
        return None
    # Only this thread traces jaxns' functions (the run traces them here too, and a
    # trace of the same function in two threads at once failed once in the tests with
    # an unexpected tracer): XLA compiles the loop in a worker while the boundary
    # programs are traced and lowered here, then compiles those while the loop runs.
    loop_done = background(loop.compile)
    lowered = []
    for fn, args, kw in jobs:
        try:
            lowered.append(fn.lower(*args, **kw))
        except Exception:  # noqa: BLE001
            if os.environ.get("JXSPEC_NB_DEBUG_NS"):
                raise
    if meanwhile is not None:
        meanwhile()
    try:
        loop_done.result()
    except Exception:  # noqa: BLE001  (the run compiles it on demand)
        if os.environ.get("JXSPEC_NB_DEBUG_NS"):
            raise

    def work() -> None:
        for low in lowered:
            try:
                low.compile()
            except Exception:  # noqa: BLE001
                if os.environ.get("JXSPEC_NB_DEBUG_NS"):
                    raise

    return background(work)


def _laplace_directions(problem: Problem, data: Any, seed: int) -> Any:
    """jaxns' one-component direction law from the Laplace approximation at the mode.

    :func:`~.mle.posterior_mode` gives the mode and the inverse Hessian in sampling
    space; the (diagonal) Jacobian of the unit-cube coordinates ``q = CDF(x(u))``
    carries the covariance to the cube, where jaxns draws directions. Its 2 D sigma
    points (mode +- sqrt(D) x the covariance's square-root columns, equal weights,
    log L = log L(mode) - D / 2: exactly this mean, covariance and height) go through
    jaxns' own fit (``update_sampler_data``), so every field of the law is jaxns'.
    Standard deviations are capped at 0.5 (a flat direction cannot dominate).
    Returns None if the mode or its covariance is not usable, or jaxns' internals
    are not as expected (the caller then runs the isotropic pilot instead).
    """
    import os

    k = problem.n_free
    u, cov = posterior_mode(problem, data, seed)
    try:
        from jaxns.sampling.ellipsoid import empty_sampler_data, update_sampler_data

        # values at the mode and at +-h in every free coordinate, with the likelihood
        # at the mode, from the compiled pointwise program (eager jnp ops would each
        # compile a program of their own)
        h = np.where(np.arange(problem.dim) < k, 1e-4, 0.0)
        pw = pointwise_batched(problem, np.stack([u, u + h, u - h]), data)
        q0, qp, qm = (np.array([p.to_unit(xi) for p, xi in zip(problem.priors, x, strict=True)])
                      for x in np.asarray(pw["values"], dtype=np.float64))
        log_l_mode = float(pw["loglik"][0].sum())
        jac = (qp - qm) / 2e-4
        cov_q = jac[:, None] * np.asarray(cov, dtype=np.float64)[:k, :k] * jac[None, :]
        sd = np.sqrt(np.diag(cov_q))
        if not (np.all(np.isfinite(cov_q)) and np.all(sd > 0) and math.isfinite(log_l_mode)):
            return None
        capped = np.minimum(sd, 0.5)
        cov_q = cov_q / np.outer(sd, sd) * np.outer(capped, capped)
        w, v = np.linalg.eigh(0.5 * (cov_q + cov_q.T))
        if not w[0] > 1e-12 * w[-1]:
            return None
        root = v * np.sqrt(w)  # columns: cov_q = root @ root.T
        points = q0[None, :] + math.sqrt(k) * np.concatenate([root.T, -root.T])

        def law_of(points: Any, log_l: Any) -> Any:
            n = points.shape[0]
            return update_sampler_data(
                jax.random.PRNGKey(0), empty_sampler_data(1, k), points, log_l,
                jnp.zeros(n), jnp.ones(n, bool), jnp.asarray(n), n_iters=1, iso_prob=1e-2,
                regularisation=1e-6)

        # one program (jaxns' eager set-up would compile an op at a time), kept with the
        # problem so that its next nested-sampling fit does not compile it again
        fit_law = problem.cached("ns-laplace-law", lambda: jax.jit(law_of))
        law = fit_law(points, np.full(2 * k, log_l_mode - 0.5 * k))
        return law if bool(np.all(np.asarray(law.valid))) else None
    except Exception:  # noqa: BLE001  (jaxns moved on, or a singular covariance)
        if os.environ.get("JXSPEC_NB_DEBUG_NS"):
            raise
        return None


def run(problem: Problem, data: Any, observations: Sequence[Any], *, chains: int = 4,
        warmup: int = 1000, samples: int = 1000, steps: int | None = None, seed: int = 0,
        progress: Any, timer: Timer, dlogZ: float | None = None,
        max_samples: int | None = None, live_points: int | None = None,
        slices: int | None = None, directions: str = "laplace",
        replacement_width: int | None = None) -> Any:
    """Nested sampling; see the module docstring."""
    if directions not in ("laplace", "gmm", "iso"):
        raise FitError(f"nested sampling: directions={directions!r} is not known; "
                       "use 'laplace' (default), 'gmm' or 'iso'")
    for name, value in (("slices", slices), ("replacement_width", replacement_width),
                        ("live_points", live_points)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise FitError(f"nested sampling: {name}={value!r}; use a whole number >= 1 "
                           "(or leave it out for the default)")
    _import_jaxns_quietly()
    _fusion_emitter_depth_loop()
    from jaxns.algorithm.depth import _depth_condition_reached
    from jaxns.constrained_sampler import UniDimSliceSampler
    from jaxns.core import NestedSampler
    from jaxns.depth_condition import DepthCondition
    from jaxns.run_config import default_depth_condition

    # the pointwise pass over the draws compiles in a worker thread meanwhile
    warm_pointwise(problem, data, samples)
    model = problem.cached("ns-model", lambda: _model(problem))
    depth = default_depth_condition()
    if dlogZ is not None:
        depth = DepthCondition(**{**{f: getattr(depth, f) for f in depth.__dataclass_fields__},
                                  "dlogZ": float(dlogZ)})
    kwargs: dict[str, Any] = {} if max_samples is None else {"max_samples": int(max_samples)}
    if live_points is not None:
        kwargs["root_allocation_degree"] = int(live_points)
    # room for an information gain of about 30 nats (n_live x (H + a few) samples) before
    # the buffer grows: each new buffer shape recompiles jaxns' depth loop (~7 s on 2
    # cores); jaxns' own start (room for a few replacement batches) grew once on ULX-4
    root = int(live_points) if live_points is not None else 30 * problem.n_free
    kwargs["initial_capacity"] = 32 * root if max_samples is None else min(32 * root,
                                                                           int(max_samples))
    n_slices = int(slices) if slices is not None else 3 * problem.n_free
    kwargs["sampler"] = UniDimSliceSampler(num_slices=n_slices)
    width = int(replacement_width) if replacement_width is not None \
        else min(root, 5 * problem.n_free)
    kwargs["replacement_width"] = width
    sampler = NestedSampler(model=model, depth_condition=depth, **kwargs)
    cap = int(steps) if steps else 10_000
    stages = ["pilot", "main"] if directions == "gmm" else ["main"]  # as progress shows them
    progress.start(method="ns", total=cap * len(stages), chains=1, labels=["live points"])
    interrupted = False
    stage = 0
    evaluations = 0.0

    def goal(state: Any) -> bool:
        nonlocal interrupted
        it = int(state.goal_loop_iter)
        if it == 0:
            return False
        try:
            progress.update(chain=None, done=stage * cap + it, info={
                "stage": stages[stage],
                "log_z": float(state.expected_log_Z_mean),
                "evaluations": evaluations + float(state.total_num_likelihood_evaluations)})
        except KeyboardInterrupt:
            interrupted = True
            warnings.warn("nested sampling interrupted: keeping the samples so far "
                          "(the evidence is then a lower bound)", RuntimeWarning, stacklevel=2)
            return True
        return it >= cap or bool(_depth_condition_reached(state, depth))

    t0 = time.perf_counter()
    key_pilot, key_main = jax.random.split(jax.random.PRNGKey(seed))
    if directions == "iso":
        fresh = sampler.initialise(key_main, args=(data,))
        _precompile(sampler, fresh, depth)
        state = sampler.resume_until_goal(fresh, goal)
        used = "iso"
    else:
        # An empty (disabled) one-component direction law: jaxns then draws isotropic
        # directions, and the state has the same form as with a fitted law, so the
        # pilot and the main run (or the Laplace-directed run) share one compiled loop.
        from jaxns.sampling.ellipsoid import empty_sampler_data

        fresh = dataclasses.replace(sampler.initialise(key_pilot, args=(data,)),
                                    sampler_data=empty_sampler_data(1, problem.n_free))
        found: dict[str, Any] = {}

        def laplace() -> None:
            found["law"] = _laplace_directions(problem, data, seed)

        _precompile(sampler, fresh, depth, laplace if directions == "laplace" else None)
        geometry = found.get("law")
        if directions == "laplace" and geometry is None:
            warnings.warn("nested sampling: no Laplace slice directions (the mode's "
                          "covariance is not usable); mapping the contours with an "
                          "isotropic pilot run instead", RuntimeWarning, stacklevel=2)
        if geometry is not None:
            used = "laplace"
            state = sampler.resume_until_goal(
                dataclasses.replace(fresh, sampler_data=geometry), goal)
        else:  # "gmm", or its fallback: the isotropic pilot maps the contours
            stages, used = ["pilot", "main"], "iso"
            state = sampler.resume_until_goal(fresh, goal)
            if not interrupted:
                try:
                    geometry = state.fit_gmm_directions().sampler_data
                except ValueError as exc:  # too few pilot samples for a full-rank fit
                    warnings.warn(f"nested sampling: no fitted slice directions ({exc}); "
                                  "keeping the isotropic pilot run", RuntimeWarning,
                                  stacklevel=2)
                else:
                    # the same sampler object (its fields are static in jaxns' compiled
                    # functions): the main run's buffers grow through the pilot's
                    # shapes, each already compiled
                    stage, used = 1, "gmm"
                    evaluations = float(state.total_num_likelihood_evaluations)
                    state = sampler.resume_until_goal(dataclasses.replace(
                        sampler.initialise(key_main, args=(data,)), sampler_data=geometry),
                        goal)
    progress.finish(interrupted=interrupted)
    res = state.to_result().trim()
    timer.add("sampling", time.perf_counter() - t0)
    try:
        q = np.asarray(res.U_samples["q"])
    except (KeyError, TypeError, IndexError):
        q = np.asarray(jax.tree.leaves(res.U_samples)[0])
    q = q.reshape(q.shape[0], -1)
    if q.shape[0] == 0:
        raise FitError("nested sampling produced no samples")
    rng = np.random.default_rng(seed)
    idx = systematic_resample(np.asarray(res.log_dp), samples, rng)
    x = np.column_stack([np.asarray(p.from_unit(jnp.asarray(q[idx, i])))
                         for i, p in enumerate(problem.priors)])
    u = x_to_u(problem, x)
    if problem.dim > problem.n_free:
        nuis = problem.u_from_values(x[0], data)[problem.n_free:]
        u = np.concatenate([u, np.broadcast_to(nuis, (u.shape[0], nuis.size))], axis=1)
    extra = {"interrupted": interrupted, "ess": float(res.ess),
             "directions": used, "slices": n_slices,
             "replacement_width": width,
             "likelihood_evaluations": int(evaluations + res.total_num_likelihood_evaluations),
             "ns_samples": int(res.total_num_samples)}
    return make_result(problem, data, observations, u[None], method="ns", timer=timer,
                       seed=seed, log_evidence=float(res.log_Z_mean),
                       log_evidence_err=float(res.log_Z_uncert), extra=extra)
