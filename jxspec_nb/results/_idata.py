"""Draws of a fit as plain numpy (:class:`Draws`), and their arviz InferenceData.

arviz takes seconds to import, so a result keeps its draws as numpy arrays and
builds the InferenceData only when ``result.idata`` is first used. Groups:
``posterior``, ``sample_stats``, ``log_likelihood`` (``counts``),
``posterior_predictive`` (``counts`` replicas, ``expected``), ``observed_data``
(``counts``); dimension ``bin`` runs over the noticed groups of all observations
in order, with coordinate ``observation`` = each bin's observation index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Draws", "build_draws", "draws_to_idata", "idata_to_draws"]


class Draws(NamedTuple):
    """Arrays of a fit; parameter arrays are shaped (chain, draw, ...)."""

    posterior: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    loglik: np.ndarray  # (chain, draw, bin)
    expected: np.ndarray  # (chain, draw, bin)
    replicated: np.ndarray  # (chain, draw, bin)
    observed: np.ndarray  # (bin,)
    obs_index: np.ndarray  # (bin,)
    dims: dict[str, list[str]]

    @property
    def shape(self) -> tuple[int, int]:
        """(chains, draws)."""
        return self.loglik.shape[:2]  # type: ignore[return-value]


def build_draws(problem: Any, data: Any, observations: Sequence[Any], pw: dict[str, np.ndarray],
                chains: int, draws: int, sample_stats: dict[str, np.ndarray],
                rng: np.random.Generator) -> Draws:
    """Reshape the pointwise outputs of ``chains * draws`` draws into :class:`Draws`."""

    def cd(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return a.reshape((chains, draws) + a.shape[1:])

    posterior: dict[str, np.ndarray] = {}
    for k, name in enumerate(problem.names):
        posterior[name] = cd(pw["values"][:, k])
    for k, name in enumerate(problem.derived_names):
        posterior[name] = cd(pw["derived"][:, k])
    dims: dict[str, list[str]] = {}
    for i, _, _ in problem.nuisance:
        var = f"background_rate[{problem.layouts[i].name}]"
        posterior[var] = cd(pw[f"background{i}"])
        dims[var] = [f"bin_{i}"]
    expected = cd(pw["expected"])
    observed = np.concatenate([np.asarray(d["counts"]) for d in data]).astype(np.float64)
    obs_index = np.concatenate([np.full(lay.n_bins, i, dtype=np.int64)
                                for i, lay in enumerate(problem.layouts)])
    replicated = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64)
    stats = {k: cd(v) for k, v in sample_stats.items()}
    stats.setdefault("lp", cd(pw["loglik"].sum(axis=1)))
    return Draws(posterior, stats, cd(pw["loglik"]), expected, replicated, observed, obs_index,
                 dims)


def draws_to_idata(d: Draws) -> Any:
    """The arviz InferenceData of :class:`Draws`."""
    import arviz as az

    dims = dict(d.dims)
    dims.update({"counts": ["bin"], "expected": ["bin"]})
    idata = az.from_dict(
        posterior=d.posterior,
        sample_stats=d.sample_stats,
        log_likelihood={"counts": d.loglik},
        posterior_predictive={"counts": d.replicated, "expected": d.expected},
        observed_data={"counts": d.observed},
        coords={"bin": np.arange(d.observed.size)},
        dims=dims,
    )
    for group in ("log_likelihood", "posterior_predictive", "observed_data"):
        getattr(idata, group).coords["observation"] = ("bin", d.obs_index)
    return idata


def idata_to_draws(idata: Any) -> Draws:
    """:class:`Draws` back from an InferenceData written by :func:`draws_to_idata`."""
    post = idata.posterior
    posterior = {k: np.asarray(v.values) for k, v in post.data_vars.items()}
    dims = {k: [str(x) for x in v.dims[2:]] for k, v in post.data_vars.items() if v.ndim > 2}
    stats = {k: np.asarray(v.values) for k, v in idata.sample_stats.data_vars.items()}
    pp = idata.posterior_predictive
    return Draws(posterior, stats, np.asarray(idata.log_likelihood["counts"].values),
                 np.asarray(pp["expected"].values), np.asarray(pp["counts"].values),
                 np.asarray(idata.observed_data["counts"].values),
                 np.asarray(idata.observed_data["observation"].values), dims)
