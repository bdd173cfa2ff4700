"""Parameter-name helpers: closest-name suggestions and per-observation names.

>>> split_name("powerlaw.norm[obs2]")
('powerlaw.norm', 'obs2')
>>> closest("powerlaw.phoindex", ["powerlaw.PhoIndex", "powerlaw.norm"])
'powerlaw.PhoIndex'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["closest", "split_name", "INSTRUMENT_PARAMS"]

# per-observation instrument parameters that are not part of the spectral model:
# name -> (default, hard lower, hard upper)
INSTRUMENT_PARAMS: dict[str, tuple[float, float, float]] = {
    "cross.factor": (1.0, 0.0, 100.0),  # multiplies the predicted counts
    "gain.slope": (1.0, 0.5, 2.0),  # XSPEC gain: E' = E / slope - offset
    "gain.offset": (0.0, -1.0, 1.0),  # keV
}

_NAME = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?:\[\s*([^\]\s]+)\s*\])?\s*$")


def split_name(name: str) -> tuple[str, str | None]:
    """``"a.b[obs]"`` -> ``("a.b", "obs")``; ``"a.b"`` -> ``("a.b", None)``."""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"not a parameter name: {name!r}")
    return m.group(1), m.group(2)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (case-insensitive), or None."""
    cands = list(candidates)
    lower = {c.lower(): c for c in cands}
    if name.lower() in lower:
        return lower[name.lower()]
    hit = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
    if hit:
        return lower[hit[0]]
    # same parameter name in another component ("PhoIndex" -> "powerlaw.PhoIndex")
    tail = name.split(".")[-1].lower()
    for c in cands:
        if c.split(".")[-1].lower() == tail:
            return c
    return None
