"""Data layer: OGIP files -> :class:`Observation` (numpy + astropy + scipy, no JAX).

Example:
    >>> from jxspec_nb.data import load_observation
    >>> obs = load_observation("PN_spectrum_grp20.fits", band=(0.5, 10.0))  # doctest: +SKIP
    >>> obs.fold.shape                                           # doctest: +SKIP
    (104, 2067)
"""

from __future__ import annotations

from ._load import load_observation
from ._rmf import ARF, RMF, read_arf, read_rmf
from .grouping import min_counts_flags, optimal_flags
from .observation import Observation
from .ogip import Spectrum, read_pha, resolve_pointer
from .responses import diagonal_rmf, gaussian_rmf, write_rmf
from .simulate import fakeit

__all__ = [
    "ARF",
    "RMF",
    "Observation",
    "Spectrum",
    "diagonal_rmf",
    "fakeit",
    "gaussian_rmf",
    "load_observation",
    "min_counts_flags",
    "optimal_flags",
    "read_arf",
    "read_pha",
    "read_rmf",
    "resolve_pointer",
    "write_rmf",
]
