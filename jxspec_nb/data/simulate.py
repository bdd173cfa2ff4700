"""``fakeit``: Poisson draws of folded model counts, for one or many observations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DataError
from .observation import Observation

__all__ = ["fakeit"]


def _one(obs: Observation, flux, rng: np.random.Generator, background: bool) -> Observation:
    flux = np.asarray(flux, dtype=np.float64).reshape(-1)
    if flux.shape != obs.e_lo.shape:
        raise DataError(
            f"photon flux for {obs.name!r} must have one value per energy bin "
            f"({obs.e_lo.size}), got shape {flux.shape}"
        )
    if not np.all(np.isfinite(flux)) or np.any(flux < 0):
        raise DataError(f"photon flux for {obs.name!r} must be finite and >= 0")
    source = obs.fold @ flux
    if background and obs.background is not None:
        sim_bkg = rng.poisson(obs.background).astype(np.float64)
        expected = source + obs.background_ratio * obs.background
        counts = rng.poisson(expected).astype(np.float64)
        return obs.with_counts(counts, background=sim_bkg)
    counts = rng.poisson(source).astype(np.float64)
    out = obs.with_counts(counts)
    if obs.background is not None:
        import dataclasses

        out = dataclasses.replace(out, background=None, background_ratio=np.zeros_like(counts))
    return out


def fakeit(
    observations: Observation | Sequence[Observation],
    photon_flux,
    *,
    seed: int | np.random.Generator = 0,
    background: bool = True,
) -> Observation | list[Observation]:
    """Simulate counts: Poisson(fold @ photon_flux [+ background_ratio * background]).

    Args:
        observations: one Observation or a list of them.
        photon_flux: the photon flux per energy bin of each observation's
            (e_lo, e_hi) grid (photons/cm^2/s): one (m,) array, or one per observation.
        seed: an integer seed or a numpy Generator.
        background: with True the background counts are redrawn as
            Poisson(observed background) and the source region gets
            Poisson(source + background_ratio * background); with False the
            copy has no background.

    Returns:
        Copies with simulated counts (a list when a list was given).

    Example:
        >>> sim = fakeit(obs, model_flux, seed=1)                      # doctest: +SKIP
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if isinstance(observations, Observation):
        return _one(observations, photon_flux, rng, background)
    observations = list(observations)
    fluxes = list(photon_flux) if not isinstance(photon_flux, np.ndarray) else None
    if fluxes is None:
        if photon_flux.ndim == 2 and photon_flux.shape[0] == len(observations):
            fluxes = list(photon_flux)
        else:
            fluxes = [photon_flux] * len(observations)
    if len(fluxes) != len(observations):
        raise DataError(
            f"{len(observations)} observations but {len(fluxes)} photon-flux arrays"
        )
    return [_one(o, f, rng, background) for o, f in zip(observations, fluxes, strict=True)]
