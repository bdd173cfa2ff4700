"""A tiny self-contained spectral problem for tests and benchmarks of the inference layer.

An absorbed power law (analytic bin integrals, absorption ``exp(-nH E^-2.5)``)
folded through a Gaussian-smeared diagonal response. It follows the model and
observation contracts, so every method can be tested in well under a second
without depending on the model and data layers.

>>> model = ToyModel()
>>> obs = toy_observation(model, {"powerlaw.PhoIndex": 1.7}, seed=1)
>>> obs.counts.shape
(40,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["ToyModel", "ToyParameter", "ToyObservation", "toy_observation"]


@dataclass(frozen=True)
class ToyParameter:
    """Same fields as :class:`jxspec_nb.model.Parameter`."""

    name: str
    component: str
    parname: str
    default: float
    unit: str = ""
    lower: float = -np.inf
    upper: float = np.inf
    frozen: bool = False


class ToyModel:
    """``toyabs*powerlaw``: ``norm E^-PhoIndex exp(-nH E^-2.5)`` (plus ``powerlaw.norm``)."""

    expression = "toyabs*powerlaw"

    def __init__(self) -> None:
        self.parameters = (
            ToyParameter("toyabs.nH", "toyabs", "nH", 0.1, "1e22", 0.0, 100.0),
            ToyParameter("powerlaw.PhoIndex", "powerlaw", "PhoIndex", 1.0, "", -3.0, 10.0),
            ToyParameter("powerlaw.norm", "powerlaw", "norm", 1.0, "", 0.0, 1e24),
        )
        self.param_names = tuple(p.name for p in self.parameters)

    def _get(self, params: Mapping[str, Any], name: str) -> Any:
        return params.get(name, next(p.default for p in self.parameters if p.name == name))

    def evaluate(self, params: Mapping[str, Any], e_lo: Any, e_hi: Any) -> Any:
        """Photon flux per bin (photons/cm^2/s)."""
        from .._jax import jnp

        g = self._get(params, "powerlaw.PhoIndex")
        norm = self._get(params, "powerlaw.norm")
        nh = self._get(params, "toyabs.nH")
        one = 1.0 - g
        safe = jnp.where(jnp.abs(one) < 1e-6, 1e-6, one)
        integral = jnp.where(jnp.abs(one) < 1e-6, jnp.log(e_hi / e_lo),
                             (e_hi ** safe - e_lo ** safe) / safe)
        mid = 0.5 * (e_lo + e_hi)
        return norm * integral * jnp.exp(-nh * mid ** -2.5)

    def _integrate(self, params: Mapping[str, Any], e_min: float, e_max: float,
                   energy: bool) -> Any:
        from .._jax import jnp

        edges = jnp.geomspace(e_min, e_max, 257)
        lo, hi = edges[:-1], edges[1:]
        flux = self.evaluate(params, lo, hi)
        if energy:
            return jnp.sum(flux * 0.5 * (lo + hi)) * 1.602176634e-9
        return jnp.sum(flux)

    def photon_flux(self, params: Mapping[str, Any], e_min: float, e_max: float) -> Any:
        """photons/cm^2/s between e_min and e_max keV."""
        return self._integrate(params, e_min, e_max, False)

    def energy_flux(self, params: Mapping[str, Any], e_min: float, e_max: float) -> Any:
        """erg/cm^2/s between e_min and e_max keV."""
        return self._integrate(params, e_min, e_max, True)


@dataclass(frozen=True)
class ToyObservation:
    """The fields of :class:`jxspec_nb.data.Observation` that the inference layer uses."""

    name: str
    counts: np.ndarray
    e_lo: np.ndarray
    e_hi: np.ndarray
    fold: Any
    exposure: float
    background: np.ndarray | None = None
    background_ratio: np.ndarray | None = None
    stat_err: np.ndarray | None = None
    is_poisson: bool = True
    channel_lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    channel_hi: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fold_dense(self) -> np.ndarray:
        return self.fold.toarray()

    def with_counts(self, counts: np.ndarray, background: np.ndarray | None = None) -> Any:
        return replace(self, counts=np.asarray(counts, float),
                       background=self.background if background is None else background)


def toy_observation(model: ToyModel, truth: Mapping[str, float], *, n_chan: int = 40,
                    n_energy: int = 120, exposure: float = 1e4, seed: int = 0,
                    background_rate: float | None = None, ratio: float = 0.2,
                    name: str = "toy") -> ToyObservation:
    """Poisson counts of ``model`` at ``truth`` (optionally with a flat background)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    edges = np.geomspace(0.3, 10.0, n_energy + 1)
    e_lo, e_hi = edges[:-1], edges[1:]
    ch = np.geomspace(0.5, 8.0, n_chan + 1)
    mid = 0.5 * (e_lo + e_hi)
    sigma = 0.05 * np.sqrt(mid)
    from scipy.special import ndtr

    resp = ndtr((ch[1:, None] - mid[None, :]) / sigma) - ndtr((ch[:-1, None] - mid[None, :]) /
                                                               sigma)
    area = 100.0 * np.exp(-0.5 * ((np.log(mid) - 0.3) / 0.8) ** 2)
    fold = sp.csr_array(resp * area[None, :] * exposure)
    flux = np.asarray(model.evaluate({k: float(v) for k, v in truth.items()}, e_lo, e_hi))
    mu = fold @ flux
    bkg = rb = None
    if background_rate is not None:
        b_true = np.full(n_chan, background_rate)
        rb = np.full(n_chan, ratio)
        bkg = rng.poisson(b_true).astype(float)
        mu = mu + ratio * b_true
    counts = rng.poisson(mu).astype(float)
    return ToyObservation(name, counts, e_lo, e_hi, fold, exposure, bkg, rb,
                          channel_lo=ch[:-1], channel_hi=ch[1:])
