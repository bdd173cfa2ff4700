"""Per-observation pieces of the likelihood: parameters, folding, statistic.

:func:`build_obs_data` turns an :class:`~jxspec_nb.data.Observation` into a
dict of arrays (the data argument of the compiled functions);
:class:`ObsEval` maps the free values to this observation's model parameters
(shared values, per-observation overrides, ties, cross-normalisation, gain)
and returns per-bin log-likelihood, deviance and expected counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._jax import jax, jnp
from . import likelihood as lk
from ._names import INSTRUMENT_PARAMS, split_name
from .priors import ModelSpec

__all__ = ["ObsEval", "build_obs_data", "topo_order"]

_DENSE_MAX = 4_000_000  # elements; above this (and sparse enough) fold as COO


def topo_order(ties: Mapping[str, Any]) -> list[str]:
    """Tie targets ordered so that each comes after the ties it depends on."""
    done: list[str] = []

    def visit(n: str) -> None:
        if n in done or n not in ties:
            return
        for d in ties[n].depends:
            visit(d)
        done.append(n)

    for n in ties:
        visit(n)
    return done


def build_obs_data(obs: Any, mode: str, stat: str) -> tuple[dict[str, Any], bool]:
    """Arrays of one observation for the compiled functions, and whether the fold is sparse.

    The energy grid is kept too (``e_lo``/``e_hi``) but the compiled functions use the
    problem's constant copy of it (see :class:`ObsEval`).
    """
    counts = np.asarray(obs.counts, dtype=np.float64)
    fold = obs.fold
    n, m = fold.shape
    d: dict[str, Any] = {
        "counts": counts,
        "e_lo": np.asarray(obs.e_lo, dtype=np.float64),
        "e_hi": np.asarray(obs.e_hi, dtype=np.float64),
    }
    nnz = getattr(fold, "nnz", n * m)
    sparse = n * m > _DENSE_MAX and nnz < 0.3 * n * m
    if sparse:
        coo = fold.tocoo()
        d["rows"] = np.asarray(coo.row, dtype=np.int32)
        d["cols"] = np.asarray(coo.col, dtype=np.int32)
        d["vals"] = np.asarray(coo.data, dtype=np.float64)
    else:
        dense = fold.toarray() if hasattr(fold, "toarray") else np.asarray(fold)
        d["fold"] = np.asarray(dense, dtype=np.float64)
    if mode != "none":
        bkg = np.asarray(obs.background, dtype=np.float64)
        ratio = np.broadcast_to(np.asarray(obs.background_ratio, dtype=np.float64), bkg.shape)
        d["background"] = bkg
        d["ratio"] = np.array(ratio)
        if mode == "bayesian":
            d["bkg_hi"] = bkg + 10.0 * np.sqrt(bkg + 1.0) + 10.0
    if stat.startswith("chi2"):
        err = getattr(obs, "stat_err", None)
        var = np.maximum(counts, 1.0) if err is None else np.asarray(err, np.float64) ** 2
        if mode == "subtract":
            d["net"] = counts - d["ratio"] * d["background"]
            d["extra_var"] = d["ratio"] ** 2 * np.maximum(d["background"], 1.0)
        d["variance"] = var
    return {k: jnp.asarray(v) for k, v in d.items()}, sparse


class ObsEval:
    """Maps free values to the parameters of one observation and evaluates its terms."""

    def __init__(self, spec: ModelSpec, name: str, index: int, bkg_spec: ModelSpec | None,
                 grid: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.spec, self.bkg_spec = spec, bkg_spec
        # the energy grid is a constant of the problem (numpy, not traced): the model
        # then precomputes what depends on the grid only (quadrature, cross-sections)
        self.grid = grid
        self.model = spec.model
        self.model_names = [p.name for p in self.model.parameters]
        entries = {*spec.prior_defs, *spec.fixed, *spec.ties}
        self.overrides: dict[str, str] = {}
        for base in [*self.model_names, *INSTRUMENT_PARAMS]:
            for key in (f"{base}[{name}]", f"{base}[{index}]"):
                if key in entries:
                    self.overrides[base] = key
        self.order = topo_order(spec.ties)
        self.has_gain = any(b.startswith("gain.") for b in self.overrides)

    def all_values(self, free: Mapping[str, Any]) -> dict[str, Any]:
        """Every named value: fixed, free and tied (global, before overrides)."""
        ns: dict[str, Any] = {**self.spec.fixed, **free}
        for t in self.order:
            ns[t] = self.spec.ties[t].evaluate(ns)
        return ns

    def params(self, free: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model parameters, instrument parameters) of this observation."""
        ns = self.all_values(free)
        if self.overrides:
            for base, key in self.overrides.items():
                ns[base] = ns[key]
            for t in self.order:
                if split_name(t)[1] is None and t not in self.overrides:
                    ns[t] = self.spec.ties[t].evaluate(ns)
        model = {n: ns[n] for n in self.model_names if n in ns}
        inst = {b: ns.get(b, INSTRUMENT_PARAMS[b][0]) for b in INSTRUMENT_PARAMS}
        return model, inst

    def params_numpy(self, free: Mapping[str, Any]) -> dict[str, Any]:
        """Model parameters of this observation for arrays of draws (numpy in, numpy out)."""
        model, _ = self.params(free)
        n = len(next(iter(free.values()))) if free else 1
        return {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()
                for k, v in model.items()}

    def _bkg_params(self, free: Mapping[str, Any]) -> dict[str, Any]:
        assert self.bkg_spec is not None
        ns: dict[str, Any] = dict(self.bkg_spec.fixed)
        ns.update({k[4:]: v for k, v in free.items() if k.startswith("bkg.")})
        for t in topo_order(self.bkg_spec.ties):
            ns[t] = self.bkg_spec.ties[t].evaluate(ns)
        return {p.name: ns[p.name] for p in self.bkg_spec.model.parameters if p.name in ns}

    @staticmethod
    def fold(flux: Any, d: Mapping[str, Any], sparse: bool) -> Any:
        """Predicted counts of a photon flux per energy bin."""
        if sparse:
            return jax.ops.segment_sum(d["vals"] * flux[d["cols"]], d["rows"],
                                       num_segments=d["counts"].shape[0])
        return d["fold"] @ flux

    def model_counts(self, free: Mapping[str, Any], d: Mapping[str, Any], sparse: bool) -> Any:
        """Expected source counts in each noticed group."""
        params, inst = self.params(free)
        e_lo, e_hi = self.grid if self.grid is not None else (d["e_lo"], d["e_hi"])
        if self.has_gain:
            e_lo = e_lo / inst["gain.slope"] - inst["gain.offset"]
            e_hi = e_hi / inst["gain.slope"] - inst["gain.offset"]
        flux = self.model.evaluate(params, e_lo, e_hi)
        counts = self.fold(flux, d, sparse)
        if "cross.factor" in self.overrides:
            counts = counts * inst["cross.factor"]
        return counts

    def terms(self, free: Mapping[str, Any], bkg_rate: Any, d: Mapping[str, Any], mode: str,
              stat: str, sparse: bool) -> tuple[Any, Any, Any]:
        """(log-likelihood, deviance, expected counts) per bin."""
        mu = self.model_counts(free, d, sparse)
        if stat.startswith("chi2"):
            var = None if stat == "chi2_model" else d["variance"]
            if mode == "subtract":
                ll, dev, _ = lk.chi2(d["net"], mu, var, extra_variance=d["extra_var"])
                return ll, dev, mu + d["ratio"] * d["background"]
            return lk.chi2(d["counts"], mu, var)
        if mode == "none":
            return lk.cstat(d["counts"], mu)
        if mode == "wstat":
            return lk.wstat(d["counts"], d["background"], mu, d["ratio"])
        if mode == "bayesian":
            if bkg_rate is None:  # optimisers: profile instead of sampling
                return lk.wstat(d["counts"], d["background"], mu, d["ratio"])
            return lk.poisson_background(d["counts"], d["background"], mu,
                                         d["ratio"] * bkg_rate, bkg_rate)
        # mode == "model": background spectral model folded through the same response,
        # predicting counts in the source region; the background spectrum sees 1/ratio of it
        assert self.bkg_spec is not None
        e_lo, e_hi = self.grid if self.grid is not None else (d["e_lo"], d["e_hi"])
        flux_b = self.bkg_spec.model.evaluate(self._bkg_params(free), e_lo, e_hi)
        nb = self.fold(flux_b, d, sparse)
        return lk.poisson_background(d["counts"], d["background"], mu, nb, nb / d["ratio"])
