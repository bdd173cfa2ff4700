"""Channel grouping: the file's GROUPING, minimum counts, optimal binning.

Grouping flags follow OGIP: ``+1`` starts a group, ``-1`` continues it, ``0``
(ungrouped) is treated as a start. Channels with QUALITY != 0 are dropped from
every group (XSPEC ``ignore bad``); a group left with no good channel vanishes.

New groupings never span a bad channel and cover the whole spectrum (as grppha
and ftgrouppha do), before any band selection.

* ``"min:N"``: consecutive good channels are merged until a group holds at least
  N counts; a short remainder at the end of a run joins the previous group.
* ``"optimal"``: Kaastra & Bleeker (2016, A&A 587, A151, Sect. 5.3). For each
  channel the response FWHM (in channels) and the counts N_r in one resolution
  element around it give x = ln[N_r (1 + 0.2 ln R)], with R the number of
  resolution elements in the spectrum; the optimal bin width is r * FWHM with
  r = 1 for x <= 2.119 and r = (0.08 + 7/x + 1.8/x^2) / (1 + 5.9/x) above. A
  group grows until its size reaches the smallest optimal width of the
  channels it contains.

Example:
    >>> import numpy as np
    >>> flags = min_counts_flags(np.array([5., 30, 1, 1, 30, 2]), np.ones(6, bool), 20)
    >>> flags.tolist()
    [1, -1, 1, -1, -1, -1]
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import DataError

__all__ = [
    "group_ids",
    "min_counts_flags",
    "optimal_flags",
    "optimal_widths",
    "parse_group",
]


def group_ids(flags: np.ndarray | None, n: int) -> np.ndarray:
    """Group index (0..G-1) of every channel from OGIP GROUPING flags (None = one per channel).

    Example:
        >>> group_ids(np.array([1, -1, 1, 0, -1]), 5).tolist()
        [0, 0, 1, 2, 2]
    """
    if flags is None:
        return np.arange(n)
    flags = np.asarray(flags)
    start = flags != -1
    start[0] = True
    return np.cumsum(start) - 1


def _runs(good: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each maximal run of good channels."""
    padded = np.concatenate([[False], good, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def min_counts_flags(counts: np.ndarray, good: np.ndarray, minimum: float) -> np.ndarray:
    """GROUPING flags giving at least ``minimum`` counts per group (see module doc)."""
    if minimum <= 0:
        raise DataError(f"minimum counts per group must be > 0, got {minimum}")
    counts = np.asarray(counts, dtype=float)
    flags = np.ones(counts.size, dtype=np.int64)
    for start, stop in _runs(np.asarray(good, bool)):
        total = 0.0
        last_start = start
        group_start = start
        for i in range(start, stop):
            if i != group_start:
                flags[i] = -1
            total += counts[i]
            if total >= minimum:
                last_start = group_start
                group_start = i + 1
                total = 0.0
        if group_start < stop and group_start != start and last_start < group_start:
            flags[group_start] = -1  # short tail joins the previous group
    return flags


def optimal_widths(counts: np.ndarray, good: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """Kaastra & Bleeker (2016) optimal bin width, in channels, for every channel."""
    counts = np.where(good, np.asarray(counts, dtype=float), 0.0)
    fwhm = np.maximum(np.asarray(fwhm, dtype=float), 1.0)
    n = counts.size
    n_res = max(float(np.sum(1.0 / fwhm[good])) if np.any(good) else 1.0, 1.0)
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    half = 0.5 * fwhm
    idx = np.arange(n)
    lo = np.clip(np.floor(idx - half + 0.5).astype(int), 0, n)
    hi = np.clip(np.floor(idx + half + 0.5).astype(int) + 1, 0, n)
    per_element = np.maximum(cumulative[hi] - cumulative[lo], 1e-10)
    x = np.log(per_element * (1.0 + 0.2 * np.log(n_res)))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (0.08 + 7.0 / x + 1.8 / x**2) / (1.0 + 5.9 / x)
    r = np.where(x > 2.119, r, 1.0)
    return np.maximum(np.floor(r * fwhm), 1.0).astype(np.int64)


def optimal_flags(counts: np.ndarray, good: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """GROUPING flags of the Kaastra & Bleeker (2016) optimal binning."""
    good = np.asarray(good, bool)
    widths = optimal_widths(counts, good, fwhm)
    flags = np.ones(good.size, dtype=np.int64)
    for start, stop in _runs(good):
        i = start
        while i < stop:
            size, limit = 1, widths[i]
            while i + size < stop and size < limit:
                limit = min(limit, widths[i + size])
                if size >= limit:
                    break
                flags[i + size] = -1
                size += 1
            i += size
    return flags


_MIN = re.compile(r"^min(?:[:=_ ]?)(\d+(?:\.\d*)?)$")


def parse_group(group: str | None) -> tuple[str, float | None]:
    """Parse a ``group=`` option: None (file), "none", "min:N", "optimal".

    Example:
        >>> parse_group("min:20")
        ('min', 20.0)
    """
    if group is None:
        return ("file", None)
    if not isinstance(group, str):
        raise DataError(f"group={group!r}: expected None, 'none', 'min:N' or 'optimal'")
    text = group.strip().lower()
    if text in ("none", "no", "off"):
        return ("none", None)
    if text in ("file", "header"):
        return ("file", None)
    if text in ("optimal", "opt", "kb16"):
        return ("optimal", None)
    match = _MIN.match(text)
    if match:
        value = float(match.group(1))
        if value <= 0:
            raise DataError(f"group={group!r}: the minimum counts must be > 0")
        return ("min", value)
    raise DataError(
        f"group={group!r} not understood; use None (the file's GROUPING), 'none', "
        "'min:20' (at least 20 counts per group) or 'optimal' (Kaastra & Bleeker 2016)"
    )
