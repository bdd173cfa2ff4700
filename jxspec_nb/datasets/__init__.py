"""Example data shipped inside the package (see ``DATA.md`` beside this file).

>>> from jxspec_nb import datasets
>>> sorted(datasets.available())
['ngc7793_ulx4']
>>> obs = datasets.load("ngc7793_ulx4")          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DatasetFiles:
    """Paths of the files of one packaged dataset."""

    name: str
    spectrum: Path
    background: Path | None
    rmf: Path
    arf: Path | None
    band: tuple[float, float]
    description: str


_REGISTRY: dict[str, DatasetFiles] = {
    "ngc7793_ulx4": DatasetFiles(
        name="ngc7793_ulx4",
        spectrum=_HERE / "ngc7793_ulx4" / "PN_spectrum_grp20.fits",
        background=_HERE / "ngc7793_ulx4" / "PNbackground_spectrum.fits",
        rmf=_HERE / "ngc7793_ulx4" / "PN.rmf",
        arf=_HERE / "ngc7793_ulx4" / "PN.arf",
        band=(0.5, 10.0),
        description=(
            "XMM-Newton EPIC-pn spectrum of NGC 7793 ULX-4 (ObsID 0693760101), "
            "grouped to >= 20 counts, with background, RMF and ARF"
        ),
    ),
}


def available() -> list[str]:
    """Names of the packaged datasets."""
    return list(_REGISTRY)


def files(name: str) -> DatasetFiles:
    """The file paths of dataset ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; available datasets: {', '.join(available())}"
        ) from None


def load(dataset: str = "ngc7793_ulx4", /, **kwargs: Any):
    """Load a packaged dataset as an :class:`~jxspec_nb.data.Observation`.

    Args:
        dataset: dataset name (see :func:`available`).
        **kwargs: passed to :func:`jxspec_nb.data.load_observation`
            (e.g. ``band=(0.5, 8.0)``, ``bkg=None`` to drop the background).

    Returns:
        The observation, restricted to the dataset's default band unless
        ``band`` is given.
    """
    from ..data import load_observation

    ds = files(dataset)
    kwargs.setdefault("band", ds.band)
    kwargs.setdefault("rmf", ds.rmf)
    kwargs.setdefault("arf", ds.arf)
    kwargs.setdefault("bkg", ds.background)
    kwargs.setdefault("name", dataset)
    return load_observation(ds.spectrum, **kwargs)
