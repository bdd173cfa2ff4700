"""NUTS, chains over the CPU cores (or devices), run in chunks.

One jitted program runs ``chunk`` iterations of every chain (a ``lax.scan`` of one
NUTS transition, chains one after the other in a ``lax.map`` by default); Python
calls it repeatedly and reports progress in between. The transition is jxspec_nb's
own (:mod:`._nuts_kernel`: multinomial NUTS with Stan's windowed adaptation of the
step size and a dense mass matrix, the potential called from one place in the
program, the initial state built on the host), or numpyro's ``hmc(algo="NUTS")``
kernel with ``kernel="numpyro"`` (then a second program initialises the chains).
Both use the same adaptation schedule and agree on the posterior (tested); the
native one needs no initialisation program (ULX-4: a cold fit 4.7 -> 3.7 s,
``benchmarks/RESULTS.md``). LogUniform parameters are sampled in log space (see
:class:`~jxspec_nb.inference._distributions.PriorDef`).

Options: ``kernel`` (``"native"`` or ``"numpyro"``), ``dense_mass`` (True),
``target_accept_prob`` (0.8), ``max_tree_depth`` (10: at most 1023 leapfrog steps
an iteration), ``chunk`` (iterations per compiled call, 100),
``init`` (None, or ``{name: value}``: starting values), ``start``: ``"auto"``
(default: ``"newton"`` with the native kernel, else ``"prior"``), ``"newton"`` (each
chain starts from a prior draw, or ``init`` with a little jitter, and spends its first
warm-up iteration on Newton's method to the posterior mode, the Hessian there from
finite differences of the gradient, inside the compiled transition; the chain then
restarts from a draw of that Laplace approximation, widened 1.5 times, with its
covariance as the first mass matrix: the first warm-up window no longer runs on the
identity, ULX-4's first 100 iterations 0.3-1.0 -> 0.06-0.09 s), ``"prior"`` (the
same starts, an identity first mass matrix) or ``"laplace"`` (one mode search on the
host before sampling, see :func:`laplace_start`; it costs a compile of its own),
``chain_method``: ``"auto"`` (default: ``"parallel"`` when JAX has two or more
devices of the default backend, else ``"sequential"``), ``"parallel"`` (the
chains split over the devices with ``pmap``, one after the other on each device;
jxspec_nb gives JAX one CPU device per core, see :mod:`jxspec_nb._jax`: 2.6x
faster than ``"sequential"`` on 2 cores; a chain count that does not divide
evenly is padded with extra chains that are dropped), ``"sequential"``
(``lax.map`` over the chains inside one compiled call; measured 2x faster than
``vmap`` on 2 CPU cores, where vectorised chains wait for the longest trajectory
and compile slower) or ``"vectorized"`` (all chains in one ``vmap``, in lock-step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._jax import jax, jnp
from ..compile import Problem
from ._common import (
    Timer,
    background,
    make_result,
    preload_summary,
    prior_draws_u,
    run_chunks,
    warm_pointwise,
)
from ._nuts_kernel import _MAX_VAR, _START_SPREAD  # the same start as the Newton search's
from .mle import posterior_mode

__all__ = ["run"]


class _Local:
    """The per-device programs: ``init(u0, imm, keys, data) -> state leaves`` of a group
    of chains, and ``step(leaves, data) -> (leaves, outputs)``: ``chunk`` iterations of
    each chain of the group, one chain after the other (``lax.map``).

    The state crosses the program boundary as its flat list of arrays (the host
    never looks inside it), so that the programs can be exported (:mod:`.._exported`)
    and called in a later process without tracing the sampler again. With the native
    kernel (:mod:`._nuts_kernel`) the host builds the initial state and there is no
    ``init`` program; with numpyro's, ``treedef``, the state's structure, is taken when
    ``init`` is traced.
    """

    def __init__(self, problem: Problem, num_warmup: int, chunk: int, dense_mass: bool,
                 target: float, max_tree_depth: int, kernel_name: str) -> None:
        self.treedef: Any = None
        self.init: Any = None

        def potential(u: Any, data: Any) -> Any:
            return -problem._log_density(u, data)

        if kernel_name == "native":
            from ._nuts_kernel import State, make_iteration

            kernel = make_iteration(potential, num_warmup, dense_mass, target, max_tree_depth)
            self.treedef = jax.tree.structure(State(*range(len(State._fields))))
        else:
            from numpyro.infer.hmc import hmc

            init_kernel, sample_kernel = hmc(potential_fn_gen=lambda d: lambda u: potential(u, d),
                                             algo="NUTS")

            def one(u: Any, imm: Any, key: Any, data: Any) -> Any:
                return init_kernel(u, num_warmup, dense_mass=dense_mass,
                                   inverse_mass_matrix=imm, target_accept_prob=target,
                                   max_tree_depth=max_tree_depth, model_args=(data,),
                                   rng_key=key)

            def init(u0: Any, imm: Any, keys: Any, data: Any) -> Any:
                # chain by chain, not vmapped: a batched Cholesky factorisation fans out
                # over XLA's CPU thread pool, and two devices doing so at once (pmap)
                # deadlocked the pool (ULX-4 with a Bayesian background, 109 parameters)
                state = jax.lax.map(lambda a: one(*a, data), (u0, imm, keys))
                leaves, self.treedef = jax.tree.flatten(state)
                return leaves

            def kernel(s: Any, data: Any) -> Any:
                s = sample_kernel(s, model_args=(data,))
                return s, (s.z, s.potential_energy, s.diverging, s.num_steps, s.accept_prob,
                           s.adapt_state.step_size)

            self.init = init

        def one_chain(state: Any, data: Any) -> Any:
            return jax.lax.scan(lambda s, _: kernel(s, data), state, None, length=chunk)

        def step(leaves: Any, data: Any) -> Any:  # one chain after the other
            state = jax.tree.unflatten(self.treedef, leaves)
            state, out = jax.lax.map(lambda st: one_chain(st, data), state)
            return jax.tree.leaves(state), _swap(out)

        def step_vectorized(leaves: Any, data: Any) -> Any:  # all chains in lock-step
            state = jax.tree.unflatten(self.treedef, leaves)
            body = jax.vmap(lambda st: kernel(st, data))
            state, out = jax.lax.scan(lambda s, _: body(s), state, None, length=chunk)
            return jax.tree.leaves(state), out

        self.step, self.step_vectorized = step, step_vectorized


def _swap(out: Any) -> Any:  # (chains, chunk, ...) -> (chunk, chains, ...)
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out)


def _wrap_init(init_local: Any, chain_method: str, chains: int) -> Any:
    """``init(u0, imm, seed, data)`` of all chains around the per-device ``init``; the
    keys are made inside (no eager PRNG op to compile)."""
    if chain_method != "parallel":
        @jax.jit
        def init(u0: Any, imm: Any, seed: Any, data: Any) -> Any:
            return init_local(u0, imm, jax.random.split(jax.random.PRNGKey(seed), chains), data)
        return init
    n_dev = n_devices(chains)
    per = chains // n_dev

    def init_dev(u0: Any, imm: Any, seed: Any, data: Any) -> Any:
        keys = jax.random.split(jax.random.PRNGKey(seed), chains).reshape(n_dev, per, -1)
        return init_local(u0, imm, keys[jax.lax.axis_index("device")], data)

    pinit = jax.pmap(init_dev, axis_name="device", in_axes=(0, 0, None, None),
                     devices=jax.local_devices()[:n_dev])

    def init_all(u0: Any, imm: Any, seed: Any, data: Any) -> Any:
        """Initial states, split as (devices, chains per device, ...) on the devices."""
        return pinit(u0.reshape((n_dev, per) + u0.shape[1:]),
                     imm.reshape((n_dev, per) + imm.shape[1:]), seed, data)
    return init_all


def _wrap_step(step_local: Any, chain_method: str, chains: int) -> Any:
    """The chunk step of all chains (``.lower(state, data).compile()``)."""
    if chain_method == "parallel":  # groups of chains over devices, in turn on each
        n_dev = n_devices(chains)
        return _Parallel(jax.pmap(step_local, in_axes=(0, None),
                                  devices=jax.local_devices()[:n_dev]))
    return jax.jit(step_local)


class _Programs:
    """Init and step of one NUTS configuration, traced here or read back from the
    exported-program cache (:mod:`.._exported`; sequential and parallel chains)."""

    def __init__(self, problem: Problem, data: Any, opts: tuple[Any, ...], chains: int,
                 chain_method: str, imm_shape: tuple[int, ...]) -> None:
        from .. import _exported

        self._local_args = (problem, *opts)
        self._local: _Local | None = None
        self.chain_method, self.chains, self.dim = chain_method, chains, problem.dim
        self.find_mode = False  # native kernel: chains search the mode first (``"newton"``)
        n_dev = n_devices(chains) if chain_method == "parallel" else 1
        self.n_dev, per = n_dev, chains // n_dev
        key = None
        if chain_method in ("parallel", "sequential"):
            key = _exported.program_key(problem, data, ("nuts", opts, chains, chain_method,
                                                        n_dev, _PROGRAM_VERSION))
        self.key = key
        init_local, self.exported_step = None, None
        self.state_avals: list[Any] | None = None
        if opts[-1] == "native":  # the host builds the initial state: no init program
            from ._nuts_kernel import initial_state

            f64 = np.float64
            eye = np.eye(problem.dim) if len(imm_shape) == 2 else np.ones(problem.dim)
            host = initial_state(np.zeros((per, problem.dim)),
                                 np.broadcast_to(eye, (per,) + imm_shape).astype(f64),
                                 np.zeros((per, 2), np.uint32))
            self.state_avals = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in host]
            self.exported_step = _exported.load(key, "step") if key is not None else None
            self.init = self._host_init
            return
        if key is not None:
            exp_init = _exported.load(key, "init")
            exp_step = _exported.load(key, "step") if exp_init is not None else None
            if exp_init is None or exp_step is None:
                f64 = jnp.float64
                try:
                    exp_init = _exported.save(key, "init", _exported.export_fn(
                        self.local.init, jax.ShapeDtypeStruct((per, problem.dim), f64),
                        jax.ShapeDtypeStruct((per,) + imm_shape, f64),
                        jax.ShapeDtypeStruct((per, 2), jnp.uint32),
                        _exported.avals_of(data)))
                except Exception:  # noqa: BLE001  (not exportable here: trace as usual)
                    exp_init, self.key = None, None
            if exp_init is not None:
                init_local = exp_init.call
                self.exported_step = exp_step
                self.state_avals = list(exp_init.out_avals)
        self.init = _wrap_init(init_local or self.local.init, chain_method, chains)

    def _host_init(self, u0: Any, imm: Any, seed: Any, data: Any) -> list[np.ndarray]:
        """The native kernel's initial state of all chains, as numpy arrays (split as
        (devices, chains per device, ...) for parallel chains)."""
        from ._nuts_kernel import initial_state

        keys = np.random.default_rng(int(seed)).integers(0, 2**32, (self.chains, 2),
                                                         dtype=np.uint32)
        leaves = list(initial_state(np.asarray(u0, np.float64), np.asarray(imm, np.float64),
                                    keys, find_mode=self.find_mode))
        if self.chain_method == "parallel":
            per = self.chains // self.n_dev
            leaves = [a.reshape((self.n_dev, per) + a.shape[1:]) for a in leaves]
        return leaves

    @property
    def local(self) -> _Local:
        """The kernels around the log density, built only when something is traced: a
        process that finds the programs stored never imports numpyro (0.23 s)."""
        if self._local is None:
            self._local = _Local(*self._local_args)
        return self._local

    def abstract_state(self, imm_shape: tuple[int, ...], seed: Any, data: Any) -> Any:
        """Shapes of the state of all chains, as ``init`` returns it."""
        if self.state_avals is not None:
            lead = (self.n_dev,) if self.chain_method == "parallel" else ()
            return [jax.ShapeDtypeStruct(lead + tuple(a.shape), a.dtype)
                    for a in self.state_avals]
        f64 = jnp.float64
        return jax.eval_shape(self.init, jax.ShapeDtypeStruct((self.chains, self.dim), f64),
                              jax.ShapeDtypeStruct((self.chains,) + imm_shape, f64), seed, data)

    def compile_step(self, abstract: Any, data: Any, lowered: Any = None) -> Any:
        """The compiled step (run in a worker thread: the only trace of the sampler then);
        ``lowered()`` is called once the program is lowered, before XLA compiles it."""
        from .. import _exported

        def compile(low: Any) -> Any:
            if lowered is not None:
                lowered()
            return low.compile()

        if self.chain_method == "vectorized":
            return compile(jax.jit(self.local.step_vectorized).lower(abstract, data))
        step_local = None
        if self.key is not None:
            exp_step = self.exported_step
            if exp_step is None:
                local = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in self.state_avals or []]
                try:
                    exp_step = _exported.save(self.key, "step", _exported.export_fn(
                        self.local.step, local,
                        _exported.avals_of(data)))
                except Exception:  # noqa: BLE001
                    exp_step = None
            if exp_step is not None:
                step_local = exp_step.call
        return compile(_wrap_step(step_local or self.local.step, self.chain_method,
                                  self.chains).lower(abstract, data))


_PROGRAM_VERSION = 3  # bump when the programs' calling convention changes




def laplace_start(problem: Problem, data: Any, seed: int, u_init: np.ndarray | None,
                  rng: np.random.Generator, n: int,
                  dense_mass: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Starting points and first inverse mass matrix of ``n`` chains from a Laplace fit.

    The posterior mode (a local search from ``u_init`` when the user gave starting
    values, else the prior-screened search of :func:`~.mle.posterior_mode`) and the
    inverse Hessian there. Chains start from N(mode, (1.5 sd)^2) and warm up with that
    covariance (its diagonal without ``dense_mass``) as their mass matrix instead of
    the identity. Measured (2-core CPU, 4 x (1000 + 1000)): the first 250 warm-up
    iterations take 8 instead of 32 leapfrog steps on ULX-4 and 36 instead of 169 on
    the Perseus nine-line problem with line norms down to 1e-6; but the mode search
    (0.1 s from given starting values, ~1.5 s screening prior draws and compiling the
    value-and-gradient) ate the gain on ULX-4 (whole fit 10.1 s against 8.6 s), and
    the chains ended warm-up with longer trajectories (10.2 against 7.3 steps) there,
    so ``"prior"`` stays the default. Returns ``None`` when no finite mode is found
    (the caller then starts from the prior).
    """
    mode, cov = posterior_mode(problem, data, seed, start=u_init)
    if not (np.all(np.isfinite(mode)) and np.all(np.isfinite(cov))):
        return None
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    w = np.clip(w, 1e-12, _MAX_VAR)
    cov = (v * w) @ v.T
    u0 = mode + _START_SPREAD * rng.standard_normal((n, mode.size)) @ (v * np.sqrt(w)).T
    imm = cov if dense_mass else np.diag(cov).copy()
    return u0, np.broadcast_to(imm, (n,) + imm.shape).copy()


def n_devices(chains: int) -> int:
    """Devices the ``"parallel"`` chain method uses for ``chains`` chains (before padding)."""
    return max(1, min(jax.local_device_count(), chains))


class _Parallel:
    """The ``"parallel"`` step: ``pmap`` of chains-in-turn over the devices.

    The state stays split as ``(devices, chains per device, ...)`` (as ``init``
    returns it); ``lower(state, data).compile()`` gives a step that returns the
    chunk's outputs as numpy arrays ``(chunk, chains, ...)``, gathered shard by
    shard on the host (no eager reshape or gather for JAX to compile).
    """

    def __init__(self, pstep: Any) -> None:
        self.pstep = pstep

    def lower(self, state: Any, data: Any) -> Any:
        return _Lowered(self.pstep.lower(state, data))


def _gather(a: Any) -> np.ndarray:
    """(devices, chunk, per, ...) sharded over devices -> numpy (chunk, chains, ...)."""
    shards = sorted(a.addressable_shards, key=lambda sh: sh.index[0].start or 0)
    x = np.concatenate([np.asarray(sh.data) for sh in shards])
    x = np.moveaxis(x, 0, 1)
    return x.reshape(x.shape[:1] + (-1,) + x.shape[3:])


class _Lowered:
    def __init__(self, lowered: Any) -> None:
        self.lowered = lowered

    def compile(self) -> Any:
        compiled = self.lowered.compile()

        def step(state: Any, data: Any) -> Any:
            state, out = compiled(state, data)
            return state, tuple(_gather(a) for a in out)

        return step


def run(problem: Problem, data: Any, observations: Sequence[Any], *, chains: int = 4,
        warmup: int = 1000, samples: int = 1000, steps: int | None = None, seed: int = 0,
        progress: Any, timer: Timer, dense_mass: bool = True,
        target_accept_prob: float = 0.8, max_tree_depth: int = 10, chunk: int = 100,
        init: dict[str, float] | None = None, chain_method: str = "auto",
        start: str = "auto", kernel: str = "native") -> Any:
    """Sample with NUTS; see the module docstring."""
    from ...errors import FitError

    total = warmup + samples
    chunk = max(1, min(int(chunk), total))
    if chain_method not in ("auto", "parallel", "sequential", "vectorized"):
        raise FitError(f"chain_method={chain_method!r}: use 'auto', 'parallel', "
                       "'sequential' or 'vectorized'")
    if kernel not in ("native", "numpyro"):
        raise FitError(f"kernel={kernel!r}: use 'native' (jxspec_nb's NUTS transition, "
                       "default) or 'numpyro' (numpyro's hmc(algo='NUTS') kernel)")
    if start == "auto":
        start = "newton" if kernel == "native" and warmup > 0 else "prior"
    if start not in ("newton", "laplace", "prior"):
        raise FitError(f"start={start!r}: use 'auto' (default), 'newton' (each chain finds "
                       "the posterior mode from its prior draw in its first warm-up iteration), "
                       "'laplace' (one mode search before sampling) or 'prior'")
    if start == "newton" and (kernel != "native" or warmup == 0):
        raise FitError("start='newton' needs kernel='native' and warm-up iterations "
                       f"(kernel={kernel!r}, warmup={warmup}): use start='prior' or 'laplace'")
    if chain_method in ("auto", "parallel"):
        chain_method = "parallel" if n_devices(chains) > 1 else "sequential"
    run_chains = chains  # chains actually run (parallel: padded to fill every device)
    if chain_method == "parallel":
        n_dev = n_devices(chains)
        run_chains = -(-chains // n_dev) * n_dev
    opts = (warmup, chunk, bool(dense_mass), float(target_accept_prob), int(max_tree_depth),
            kernel)
    key = ("nuts", opts, run_chains, chain_method)
    imm_shape = (problem.dim, problem.dim) if dense_mass else (problem.dim,)
    rng = np.random.default_rng(seed)
    u_init = None
    if init:
        x = np.array([init.get(n, p.median()) for n, p in zip(problem.names, problem.priors,
                                                             strict=True)])
        u_init = problem.u_from_values(x, data)
    seed_arr = np.uint32(seed % 2**32)
    with timer("compile"):
        progs = problem.cached(key, lambda: _Programs(problem, data, opts, run_chains,
                                                      chain_method, imm_shape))
        # the step compiles in a worker thread while the start is found and the initial
        # state computed
        sig = (key, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(data)))
        ckey = ("compiled", sig)
        pending = None
        if ckey not in problem._fns:
            abstract = progs.abstract_state(imm_shape, seed_arr, data)
            # the results' pointwise program compiles beside the step's XLA compile, which
            # leaves part of the second core idle; after the step's trace (both need the GIL)

            def lowered() -> None:
                warm_pointwise(problem, data, chains * samples)
                preload_summary()

            pending = background(lambda: progs.compile_step(abstract, data, lowered))
    started = None
    if start == "laplace":
        with timer("laplace"):
            started = laplace_start(problem, data, seed, u_init, rng, run_chains, dense_mass)
    if started is None:
        if u_init is not None:
            u0 = np.tile(u_init, (run_chains, 1))
            u0[:, :problem.n_free] += rng.normal(0.0, 0.05, (run_chains, problem.n_free))
        else:
            u0 = prior_draws_u(problem, data, rng, run_chains)
        imm = np.broadcast_to(np.eye(problem.dim) if dense_mass else np.ones(problem.dim),
                              (run_chains,) + imm_shape).copy()
    else:
        u0, imm = started
    progs.find_mode = start == "newton" and started is None
    with timer("compile"):
        u0j = u0 if chain_method == "parallel" else jnp.asarray(u0)
        immj = imm if chain_method == "parallel" else jnp.asarray(imm)
        state = progs.init(u0j, immj, seed_arr, data)
        if pending is not None:
            problem._fns[ckey] = pending.result()
        step_c = problem._fns[ckey]
    warm_pointwise(problem, data, chains * samples)  # when the step came from the cache
    n_chunks = -(-total // chunk)
    progress.start(method="nuts", total=total, chains=chains,
                   labels=[f"chain {c}" for c in range(chains)])
    divergences = np.zeros(chains, dtype=int)

    def on_chunk(k: int, out: Any) -> None:
        done = min((k + 1) * chunk, total)
        div = np.asarray(out[2])
        first = k * chunk
        post = np.arange(first, first + chunk) >= warmup
        divergences[:] += div[post].sum(axis=0)
        for c in range(chains):
            progress.update(chain=c, done=done, info={
                "step_size": float(out[5][-1, c]),
                "accept_prob": float(np.mean(out[4][:, c])),
                "steps": float(np.mean(out[3][:, c])),
                "divergences": int(divergences[c]),
            })

    import time

    t0 = time.perf_counter()
    def step(s: Any) -> Any:
        s, out = step_c(s, data)
        out = jax.device_get(out)
        if run_chains != chains:  # drop the padding chains
            out = tuple(np.asarray(a)[:, :chains] for a in out)
        return s, out

    state, outs, interrupted = run_chunks(step, state, n_chunks, on_chunk, progress, "nuts")
    dt = time.perf_counter() - t0
    timer.add("sampling", dt)
    if not outs:
        from ...errors import FitError

        raise FitError("NUTS was interrupted before the first chunk finished: nothing sampled")
    z, pe, div, nsteps, acc, ss = (np.concatenate([o[j] for o in outs])
                                   for j in range(6))
    done = z.shape[0]
    first = warmup if done > warmup else 0
    if first == 0 and done <= warmup:
        import warnings

        warnings.warn("interrupted during warm-up: the draws kept are warm-up draws",
                      RuntimeWarning, stacklevel=2)
    sl = slice(first, min(done, total))
    u = np.swapaxes(z[sl], 0, 1)  # (chains, draws, dim)
    stats = {
        "diverging": np.swapaxes(div[sl], 0, 1),
        "n_steps": np.swapaxes(nsteps[sl], 0, 1).astype(np.int64),
        "acceptance_rate": np.swapaxes(acc[sl], 0, 1),
        "step_size": np.swapaxes(ss[sl], 0, 1),
        "lp": -np.swapaxes(pe[sl], 0, 1),
    }
    stats = {k: v.reshape(-1, *v.shape[2:]) for k, v in stats.items()}
    extra = {"interrupted": bool(interrupted), "chain_method": chain_method,
             "mean_leapfrog_steps": float(np.mean(nsteps[sl])),
             "start": ("laplace" if started is not None
                       else ("prior" if start == "laplace" else start)),
             "kernel": kernel}
    return make_result(problem, data, observations, u, method="nuts", timer=timer, seed=seed,
                       sample_stats=stats, extra=extra)
