"""One compiled log-density per problem, cached and reused.

A :class:`Problem` is the static part of a fit: the spec (model, priors, ties),
the fit statistic, and per observation its name, background treatment and fold
storage. Data (counts, folding operator, energy grid) are *arguments* of the
jitted functions, never constants baked into them: a second fit of the same
problem, a fit of a fakeit spectrum of the same shape, posterior-predictive
draws and summaries all reuse the same compiled code.

>>> prob, data = get_problem(spec, [obs])               # doctest: +SKIP
>>> float(prob.log_density(prob.initial_u(), data))     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._jax import jax, jnp
from ..errors import FitError
from ._distributions import PriorDef, VectorForward
from ._model_eval import ObsEval, active_fold, build_obs_data
from .priors import ModelSpec

__all__ = ["Problem", "get_problem", "trace_counts", "enable_persistent_cache", "clear_cache"]

_TRACES: dict[str, int] = {}
_PROBLEMS: dict[Any, Problem] = {}
_CACHE_ON = False
_CACHE_PATH: Path | None = None

STATS = ("cstat", "wstat", "chi2", "chi2_model")


def trace_counts() -> dict[str, int]:
    """How many times each compiled function was traced (= compiled) in this process."""
    return dict(_TRACES)


def _count(name: str) -> None:
    _TRACES[name] = _TRACES.get(name, 0) + 1


def clear_cache() -> None:
    """Forget every cached problem (and so its compiled functions)."""
    _PROBLEMS.clear()


def enable_persistent_cache(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in a user cache folder.

    The folder is ``$JXSPEC_NB_CACHE``, else ``$XDG_CACHE_HOME/jxspec_nb/jax``
    (``~/.cache/jxspec_nb/jax``). ``JXSPEC_NB_CACHE=off`` disables it.
    Called once, at the first fit. Returns the folder, or None when disabled.
    """
    global _CACHE_ON, _CACHE_PATH
    env = os.environ.get("JXSPEC_NB_CACHE", "")
    if _cache_off():
        return None
    if path is None:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        path = Path(env) if env else base / "jxspec_nb" / "jax"
    path = Path(path)
    if not _CACHE_ON:
        try:
            path.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(path))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        except (OSError, AttributeError):  # read-only home, old jax
            return None
        _CACHE_ON = True
        _CACHE_PATH = path
    return path


def _cache_off() -> bool:
    return os.environ.get("JXSPEC_NB_CACHE", "").lower() in ("off", "0", "no", "false")


def cache_folder() -> Path | None:
    """The folder :func:`enable_persistent_cache` turned on, or None (not yet, or off)."""
    return None if not _CACHE_ON or _cache_off() else _CACHE_PATH


@dataclass(frozen=True)
class ObsLayout:
    """Static description of one observation inside a problem."""

    name: str
    background: str  # "none" | "wstat" | "bayesian" | "model" | "subtract"
    sparse: bool
    n_bins: int
    grid_key: str = ""  # hash of the energy grid (evaluated as a constant: see ObsEval)
    blocks: tuple[tuple[int, int, int, int], ...] = ()  # dense fold row blocks (fold_blocks)
    # the samplers' fold of the channels with counts only, (sparse, blocks) of it, or None
    # (see _model_eval.active_fold)
    active: tuple[bool, tuple[tuple[int, int, int, int], ...]] | None = None


class Problem:
    """The log-density of one (spec, observations structure, statistic) problem.

    Attributes:
        names: names of the free parameters (model, instrument, background model).
        priors: their :class:`PriorDef`, same order.
        dim: length of the unconstrained vector ``u`` (free parameters, then
            Bayesian background rates).
        log_density: jitted ``(u, data) -> log posterior`` (up to a constant).
        pointwise: jitted, vmapped ``(u[n, dim], data) -> dict`` with per-bin
            log-likelihood, expected counts, statistic and parameter values.
    """

    def __init__(self, spec: ModelSpec, layouts: tuple[ObsLayout, ...], stat: str,
                 bkg_spec: ModelSpec | None,
                 grids: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None) -> None:
        self.spec, self.layouts, self.stat, self.bkg_spec = spec, layouts, stat, bkg_spec
        grids = list(grids) if grids is not None else [None] * len(layouts)
        self.evals = [ObsEval(spec, lay.name, i, bkg_spec, grids[i])
                      for i, lay in enumerate(layouts)]
        names = list(spec.free_names)
        priors: list[PriorDef] = list(spec.prior_defs.values())
        if bkg_spec is not None:
            names += ["bkg." + n for n in bkg_spec.free_names]
            priors += list(bkg_spec.prior_defs.values())
        self.names, self.priors = tuple(names), tuple(priors)
        self._forward = VectorForward(self.priors)
        self.n_free = len(names)
        self.nuisance: list[tuple[int, int, int]] = []  # (obs index, start, size)
        start = self.n_free
        for i, lay in enumerate(layouts):
            if lay.background == "bayesian":
                self.nuisance.append((i, start, lay.n_bins))
                start += lay.n_bins
        self.dim = start
        self.n_bins = sum(lay.n_bins for lay in layouts)
        # XSPEC: dof = bins - free parameters; a modelled background adds its bins
        n_data = self.n_bins + sum(lay.n_bins for lay in layouts if lay.background == "model")
        self.dof = n_data - self.n_free
        self.derived_names = tuple(n for n in spec.ties)
        self._fns: dict[Any, Callable[..., Any]] = {}
        self.log_density = jax.jit(self._log_density)
        self.value_and_grad = jax.jit(jax.value_and_grad(self._log_density))
        self.pointwise = jax.jit(jax.vmap(self._pointwise, in_axes=(0, None)))
        self.loglik_values = jax.jit(self._loglik_values_total)

    # ------------------------------------------------------------ transforms
    def transform(self, u: Any) -> tuple[Any, Any]:
        """Unconstrained ``u`` -> (constrained vector, log prior in u-space).

        One vector operation per kind of prior transform (:class:`VectorForward`),
        not one scalar chain per parameter: compiles much faster for many parameters.
        """
        return self._forward(u)

    def _split(self, x: Any, u: Any, data: Any) -> tuple[dict[str, Any], list[Any], Any]:
        """Free values, per-observation Bayesian background expectations, log-jac."""
        values = {n: x[k] for k, n in enumerate(self.names)}
        bkgs: list[Any] = [None] * len(self.layouts)
        lp = 0.0
        for i, start, size in self.nuisance:
            ui = u[start:start + size]
            bkgs[i] = data[i]["bkg_hi"] * jax.nn.sigmoid(ui)
            lp = lp + jnp.sum(jax.nn.log_sigmoid(ui) + jax.nn.log_sigmoid(-ui))
        return values, bkgs, lp

    # ------------------------------------------------------------ likelihood
    def _terms(self, values: dict[str, Any], bkgs: list[Any], data: Any,
               fast: bool = False) -> list[Any]:
        """Per observation (log-likelihood, deviance, expected counts) per bin; with
        ``fast`` where the layout has an active-rows fold only log-likelihood terms
        whose sum is the spectrum's (``(terms, None, None)``)."""
        out = []
        for i, ev in enumerate(self.evals):
            lay = self.layouts[i]
            if fast and lay.active is not None:
                out.append((ev.active_loglik(values, data[i], lay.background, lay.active),
                            None, None))
            else:
                out.append(ev.terms(values, bkgs[i], data[i], lay.background, self.stat,
                                    lay.sparse, lay.blocks, fast))
        return out

    def _log_density(self, u: Any, data: Any) -> Any:
        """Log posterior in sampling space; folds in single precision (samplers' path,
        see ``_model_eval.FOLD_DTYPE``)."""
        _count("log_density")
        x, lp = self.transform(u)
        values, bkgs, lpb = self._split(x, u, data)
        ll = sum(jnp.sum(t[0]) for t in self._terms(values, bkgs, data, fast=True))
        out = ll + lp + lpb
        return jnp.where(jnp.isfinite(out), out, -jnp.inf)

    def _loglik_values_total(self, x: Any, data: Any, fast: bool = False) -> Any:
        """Total log-likelihood at constrained free values ``x`` (no nuisance);
        float64 fold unless ``fast``."""
        _count("loglik_values")
        values = {n: x[k] for k, n in enumerate(self.names)}
        ll = sum(jnp.sum(t[0]) for t in self._terms(values, [None] * len(self.layouts), data,
                                                     fast))
        return jnp.where(jnp.isfinite(ll), ll, -jnp.inf)

    def _pointwise(self, u: Any, data: Any) -> dict[str, Any]:
        _count("pointwise")
        x, lp = self.transform(u)
        values, bkgs, lpb = self._split(x, u, data)
        terms = self._terms(values, bkgs, data)
        out = {
            "loglik": jnp.concatenate([t[0] for t in terms]),
            "log_prior": lp + lpb,  # in sampling space (u), as in the log density
            "statistic": sum(jnp.sum(t[1]) for t in terms),
            "expected": jnp.concatenate([t[2] for t in terms]),
            "values": x,
        }
        derived = self.evals[0].all_values(values) if self.derived_names else {}
        out["derived"] = jnp.stack([derived[n] for n in self.derived_names]) \
            if self.derived_names else jnp.zeros(0)
        for i, start, size in self.nuisance:
            out[f"background{i}"] = bkgs[i]
        return out

    # ------------------------------------------------------------- helpers
    def cached(self, key: Any, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        """A compiled function stored with this problem (built once)."""
        if key not in self._fns:
            self._fns[key] = build()
        return self._fns[key]

    def initial_u(self) -> np.ndarray:
        """Unconstrained vector at the prior medians (background rates at the data)."""
        u = np.zeros(self.dim)
        for k, prior in enumerate(self.priors):
            u[k] = prior.inverse(prior.median())
        return u

    def u_from_values(self, x: np.ndarray, data: Any) -> np.ndarray:
        """Unconstrained vector of free values ``x`` (backgrounds at their data)."""
        u = np.zeros(self.dim)
        for k, prior in enumerate(self.priors):
            u[k] = prior.inverse(float(x[k]))
        for i, start, size in self.nuisance:
            hi = np.asarray(data[i]["bkg_hi"])
            b = np.maximum(np.asarray(data[i]["background"]), 0.5)
            p = np.clip(b / hi, 1e-6, 1 - 1e-6)
            u[start:start + size] = np.log(p / (1 - p))
        return u

    def __repr__(self) -> str:
        obs = ", ".join(f"{lay.name}[{lay.background}]" for lay in self.layouts)
        return f"Problem({self.spec.model.expression}; {self.stat}; {obs}; dim={self.dim})"


def _background_mode(obs: Any, stat: str, background: Any) -> str:
    has = getattr(obs, "background", None) is not None
    if isinstance(background, ModelSpec):
        if not has:
            raise FitError(f"observation {obs.name!r} has no background spectrum to model")
        if stat not in ("cstat", "wstat"):
            raise FitError("a background model needs stat='cstat'")
        return "model"
    mode = background
    if mode in ("auto", None):
        if not has:
            return "none"
        return "subtract" if stat.startswith("chi2") else "wstat"
    if stat == "wstat" and mode not in ("wstat", "auto"):
        raise FitError(f"stat='wstat' profiles the background; background={mode!r} conflicts")
    if mode == "ignore" or not has:
        return "none"
    if mode not in ("wstat", "bayesian", "subtract"):
        raise FitError(f"background must be 'auto', 'wstat', 'bayesian', 'subtract', 'ignore' "
                       f"or a ModelSpec, got {mode!r}")
    if stat.startswith("chi2") != (mode == "subtract"):
        raise FitError(f"background={mode!r} does not go with stat={stat!r}: chi2 subtracts "
                       f"the background, C-stat uses 'wstat' or 'bayesian'")
    return mode


def get_problem(spec: ModelSpec, observations: Sequence[Any], *, stat: str = "cstat",
                background: Any = "auto") -> tuple[Problem, tuple[dict[str, Any], ...]]:
    """The cached :class:`Problem` of this fit, and its data arguments.

    Args:
        spec: model with priors.
        observations: one or several :class:`~jxspec_nb.data.Observation`.
        stat: ``"cstat"`` (default), ``"wstat"``, ``"chi2"`` (data variance) or
            ``"chi2_model"`` (model variance).
        background: ``"auto"`` (W-stat with C-stat when there is a background,
            subtraction with chi2), ``"wstat"``, ``"bayesian"`` (per-bin background
            rates sampled with the background spectrum's Poisson likelihood),
            ``"subtract"``, ``"ignore"``, or a :class:`ModelSpec` for the
            background (its parameters get the prefix ``bkg.``).
    """
    if stat not in STATS:
        raise FitError(f"unknown stat {stat!r}; use one of {', '.join(STATS)}")
    if not observations:
        raise FitError("no observation to fit")
    if not spec.free_names:
        raise FitError("the model has no free parameter: give at least one a prior")
    names = [getattr(o, "name", None) or f"obs{i}" for i, o in enumerate(observations)]
    if len(set(names)) != len(names):
        names = [f"{n}#{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]
    _check_obs_keys(spec, names)
    layouts, data, grids = [], [], []
    for name, obs in zip(names, observations, strict=True):
        mode = _background_mode(obs, stat, background)
        d, sparse, blocks = build_obs_data(obs, mode, stat)
        act = active_fold(obs, mode, stat)
        if act is not None:
            d.update({k: jax.device_put(v) for k, v in act[0].items()})
        e_lo = np.ascontiguousarray(obs.e_lo, dtype=np.float64)
        e_hi = np.ascontiguousarray(obs.e_hi, dtype=np.float64)
        gkey = hashlib.blake2b(e_lo.tobytes() + b"|" + e_hi.tobytes(), digest_size=12).hexdigest()
        layouts.append(ObsLayout(name, mode, sparse, int(d["counts"].shape[0]), gkey, blocks,
                                 None if act is None else act[1]))
        data.append(d)
        grids.append((e_lo, e_hi))
    bkg_spec = background if isinstance(background, ModelSpec) else None
    key = (spec.key, None if bkg_spec is None else bkg_spec.key, stat, tuple(layouts))
    prob = _PROBLEMS.get(key)
    if prob is None:
        _prepare_tables([spec] + ([bkg_spec] if bkg_spec is not None else []), grids)
        prob = _PROBLEMS[key] = Problem(spec, tuple(layouts), stat, bkg_spec, grids)
    return prob, tuple(data)


def _prepare_tables(specs: Sequence[ModelSpec], grids: Sequence[Any]) -> None:
    """Start building the models' tables on the new problem's grids in a thread
    (:meth:`~jxspec_nb.model.SpectralModel.prepare`): a cold ULX-4 fit's first trace
    waited ~0.15 s for tbabs' absorption terms. Errors are left to the trace, which
    builds the same tables (under the grids' lock) and reports them."""
    import threading

    def run() -> None:
        for spec in specs:
            for e_lo, e_hi in grids:
                try:
                    spec.model.prepare(e_lo, e_hi)
                except Exception:  # noqa: BLE001  (the trace raises it properly)
                    pass

    threading.Thread(target=run, name="jxspec-tables-prepare", daemon=True).start()


def _check_obs_keys(spec: ModelSpec, names: list[str]) -> None:
    allowed = set(names) | {str(i) for i in range(len(names))}
    for key in spec.per_observation():
        if key not in allowed:
            raise FitError(f"per-observation parameter [{key}] matches no observation; "
                           f"observations: {', '.join(names)} (or indices 0..{len(names) - 1})")
