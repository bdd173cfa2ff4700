"""The result of every fit method: :class:`FitResult`.

>>> result = fit(spec, obs)                       # doctest: +SKIP
>>> result.summary()                              # doctest: +SKIP
>>> result.flux(2.0, 10.0)                        # doctest: +SKIP
>>> result.save("ulx4.nc"); load_result("ulx4.nc")   # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._idata import Draws, draws_to_idata
from .io import load_result, save_result
from .summary import fit_summary, summary_text

__all__ = ["FitResult", "Draws", "load_result"]


@dataclass(frozen=True, eq=False)
class FitResult:
    """Posterior draws (or an optimum with its Laplace approximation) and what they give.

    Attributes:
        draws: the arrays of the fit (:class:`~jxspec_nb.results._idata.Draws`).
        idata: (property, built on first use) arviz InferenceData: ``posterior``
            (free and tied parameters),
            ``sample_stats`` (``lp``, and per method ``diverging``, ``step_size``,
            ``n_steps``, ``acceptance_rate``...), ``log_likelihood`` (``counts``
            per bin, for LOO/WAIC), ``posterior_predictive`` (``counts``: Poisson
            replicas; ``expected``: expected counts), ``observed_data``.
        method: "nuts", "aies", "ns", "vi" or "mle".
        spec: the :class:`~jxspec_nb.inference.ModelSpec`.
        observations: the fitted observations (empty after :func:`load_result`
            unless given again).
        timings: seconds per phase (setup, compile, sampling, postprocess, total).
        stat: "cstat", "wstat", "chi2" or "chi2_model".
        fit_statistic: the statistic as XSPEC reports it at ``best_fit``.
        dof: bins minus free parameters.
        log_evidence, log_evidence_err: natural-log evidence (nested sampling).
        elbo: ELBO per optimisation step (VI), else None.
        best_fit: highest-likelihood parameters (the optimum for ``mle``).
        extra: method-specific results (``mle``: covariance, errors, intervals).
    """

    draws: Draws
    method: str
    spec: Any
    observations: tuple[Any, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    stat: str = "cstat"
    fit_statistic: float | None = None
    dof: int | None = None
    log_evidence: float | None = None
    log_evidence_err: float | None = None
    elbo: np.ndarray | None = None
    best_fit: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    background: str = "none"
    problem: Any = field(default=None, repr=False)
    data: Any = field(default=None, repr=False)
    _idata: Any = field(default=None, repr=False)

    @property
    def idata(self) -> Any:
        """The arviz InferenceData (built from :attr:`draws` on first use)."""
        if self._idata is None:
            object.__setattr__(self, "_idata", draws_to_idata(self.draws))
        return self._idata

    # ------------------------------------------------------------ samples
    def samples(self) -> dict[str, np.ndarray]:
        """``{name: draws}`` of every scalar parameter, chains concatenated."""
        return {k: v.reshape(-1) for k, v in self.draws.posterior.items() if v.ndim == 2}

    def summary(self) -> Any:
        """pandas DataFrame: median, q16, q84, mean, sd, r_hat, ess_bulk, ess_tail.

        ``DataFrame.attrs["divergences"]`` holds the number of divergent transitions.
        """
        return fit_summary(self)

    def predicted_counts(self, obs_index: int = 0, *, replicated: bool = False) -> np.ndarray:
        """Posterior draws of the expected (or Poisson-replicated) counts of one
        observation: array (n_draws, n_bins)."""
        arr = self.draws.replicated if replicated else self.draws.expected
        mask = self.draws.obs_index == obs_index
        if not mask.any():
            raise IndexError(f"no observation {obs_index} in this result")
        return arr.reshape(-1, arr.shape[-1])[:, mask]

    def observed_counts(self, obs_index: int = 0) -> np.ndarray:
        """The observed counts of one observation."""
        return self.draws.observed[self.draws.obs_index == obs_index]

    # ------------------------------------------------------------ derived quantities
    def _require_problem(self) -> Any:
        if self.problem is None:
            from .io import rebuild_problem

            prob = rebuild_problem(self)
            object.__setattr__(self, "problem", prob)
        return self.problem

    def _param_draws(self, obs_index: int, max_draws: int | None) -> dict[str, np.ndarray]:
        prob = self._require_problem()
        s = self.samples()
        n = next(iter(s.values())).size
        idx = np.arange(n)
        if max_draws is not None and n > max_draws:
            idx = np.linspace(0, n - 1, max_draws).astype(int)
        free = {k: s[k][idx] for k in prob.names}
        return prob.evals[obs_index].params_numpy(free)

    def _quantity(self, fn_name: str, e_min: float, e_max: float, obs_index: int,
                  max_draws: int | None, **kwargs: Any) -> dict[str, Any]:
        from .._jax import jax, jnp

        params = self._param_draws(obs_index, max_draws)
        model = self.spec.model
        fn = getattr(model, fn_name)

        def one(p: dict[str, Any]) -> Any:
            return fn(p, e_min, e_max, **kwargs)

        vals = np.asarray(jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in params.items()}))
        q16, med, q84 = np.percentile(vals, [16, 50, 84])
        return {"median": float(med), "q16": float(q16), "q84": float(q84),
                "mean": float(vals.mean()), "sd": float(vals.std()), "samples": vals}

    def flux(self, e_min: float, e_max: float, *, energy: bool = True, obs_index: int = 0,
             max_draws: int | None = 2000) -> dict[str, Any]:
        """Model flux between ``e_min`` and ``e_max`` keV over the posterior.

        Args:
            energy: erg/cm^2/s (True) or photons/cm^2/s (False).
            obs_index: whose parameters (per-observation ones differ).
            max_draws: thin to at most this many draws.

        Returns:
            ``{"median", "q16", "q84", "mean", "sd", "samples"}``.
        """
        name = "energy_flux" if energy else "photon_flux"
        return self._quantity(name, e_min, e_max, obs_index, max_draws)

    def luminosity(self, e_min: float, e_max: float, *, redshift: float | None = None,
                   distance: float | None = None, cosmology: Any = None, obs_index: int = 0,
                   max_draws: int | None = 2000) -> dict[str, Any]:
        """Luminosity (erg/s) between ``e_min`` and ``e_max`` keV (rest frame) over the
        posterior; ``distance`` in the unit the model's ``luminosity`` takes."""
        return self._quantity("luminosity", e_min, e_max, obs_index, max_draws,
                              redshift=redshift, distance=distance, cosmology=cosmology)

    # ------------------------------------------------------------ model comparison
    def loo(self, **kwargs: Any) -> Any:
        """PSIS-LOO (``arviz.loo``) over the bins of all observations."""
        import arviz as az

        return az.loo(self.idata, var_name="counts", **kwargs)

    def waic(self, **kwargs: Any) -> Any:
        """WAIC (``arviz.waic``) over the bins of all observations."""
        import arviz as az

        return az.waic(self.idata, var_name="counts", **kwargs)

    def ppc_pvalue(self) -> float:
        """Posterior-predictive p-value of the C-stat deviance (Gelman et al. 1996):
        the fraction of draws where the replicated data fit worse than the observed."""
        d = self.draws
        m = np.maximum(d.expected.reshape(-1, d.expected.shape[-1]), 1e-300)
        rep = d.replicated.reshape(m.shape)
        obs = d.observed[None, :]

        def dev(d: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(d > 0, d * np.log(d / m), 0.0)
            return 2.0 * np.sum(m - d + t, axis=1)

        return float(np.mean(dev(rep) >= dev(obs)))

    # ------------------------------------------------------------ io
    def save(self, path: Any) -> None:
        """Write to netCDF (arviz groups + JSON attributes; never pickle)."""
        save_result(self, path)

    # ------------------------------------------------------------ display
    def __repr__(self) -> str:
        return summary_text(self)

    def _repr_html_(self) -> str:
        try:
            from .display import result_html
        except ImportError:
            return f"<pre>{html.escape(repr(self))}</pre>"
        return result_html(self)

    def plot_corner(self, **kwargs: Any) -> Any:
        """Corner plot (see :func:`jxspec_nb.results.plots.plot_corner`)."""
        from .plots import plot_corner

        return plot_corner(self, **kwargs)

    def plot_ppc(self, *args: Any, **kwargs: Any) -> Any:
        """Folded spectrum with posterior-predictive bands (see ``plots.plot_ppc``)."""
        from .plots import plot_ppc

        return plot_ppc(self, *args, **kwargs)

    def plot_trace(self, **kwargs: Any) -> Any:
        """Trace plot (see ``plots.plot_trace``)."""
        from .plots import plot_trace

        return plot_trace(self, **kwargs)

    def plot_elbo(self, **kwargs: Any) -> Any:
        """ELBO against step (VI; see ``plots.plot_elbo``)."""
        from .plots import plot_elbo

        return plot_elbo(self, **kwargs)

    def with_observations(self, observations: Sequence[Any]) -> FitResult:
        """The same result with ``observations`` attached (after loading)."""
        from dataclasses import replace

        return replace(self, observations=tuple(observations), problem=None, data=None)
