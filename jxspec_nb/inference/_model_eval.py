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

__all__ = ["ObsEval", "active_fold", "build_obs_data", "counts_data", "fold_data", "is_fold_key",
           "topo_order"]

_DENSE_MAX = 4_000_000  # elements; above this (and sparse enough) fold as COO
_BLOCK_MIN = 50_000  # elements; a dense fold this large may be split in row blocks ...
_BLOCK_GAIN = 0.7  # ... when the blocks' column ranges cover at most this fraction of it
_BLOCK_COUNTS = (2, 3, 4)
# A block costs as much as this many matrix elements: its slice, product and pad in the
# value and the gradient are ~6 more kernels. Measured on the ULX-4 value+grad (2-core
# Xeon, float32 fold): 1 / 2 / 3 / 4 blocks covering 155k / 89k / 81k / 70k elements took
# 36.0 / 29.6 / 30.6 / 30.8 us, ~0.1 us per 1000 elements and ~1.5 us per block.
_BLOCK_ELEMENTS = 15_000

Blocks = tuple[tuple[int, int, int, int], ...]

# Samplers fold in single precision ("fast" path: the log-density NUTS, AIES, VI, MAP
# and nested sampling evaluate): OGIP response matrices and ARFs are themselves float32
# (MATRIX, SPECRESP), and the matrix-vector products that dominate each evaluation move
# half the bytes (ULX-4 value and gradient 85 -> 51 us with the other changes of that
# commit; the fold alone 18.7 -> 14.0 us). Fluxes go in and counts come out in float64;
# a channel's sum over ~10^3 energies carries ~1e-7 relative rounding, which moves the
# log-likelihood by ~1e-5 (ULX-4), far below what changes a posterior. Reported
# statistics, per-bin log-likelihoods, expected counts and maximum likelihood use the
# float64 fold (the "precise" path), so fit statistics are exact to float64.
FOLD_DTYPE = np.float32


def fold_blocks(nonzero: np.ndarray) -> Blocks:
    """Row blocks ``(row0, row1, col0, col1)`` of a dense fold, or ``()`` to keep it whole.

    A CCD response reaches each channel from a contiguous but drifting range of
    energies, so splitting the rows in 2-4 equal blocks, each restricted to the
    columns its rows touch, skips about half of the zero entries; each block is
    a small dense matrix-vector product on a static slice of the flux. The count
    chosen minimises the elements covered plus ``_BLOCK_ELEMENTS`` per block, and
    blocks are used at all only when they cover at most ``_BLOCK_GAIN`` of the matrix.

    Example:
        >>> fold_blocks(np.eye(400, dtype=bool))[0]
        (0, 100, 0, 100)
    """
    n, m = nonzero.shape
    if n * m < _BLOCK_MIN or n < 8:
        return ()
    best: Blocks = ()
    best_cost = float("inf")
    for k in _BLOCK_COUNTS:
        edges = np.linspace(0, n, k + 1).astype(int)
        blocks = []
        for r0, r1 in zip(edges[:-1], edges[1:], strict=True):
            cols = np.flatnonzero(nonzero[r0:r1].any(axis=0))
            c0, c1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 1)
            blocks.append((int(r0), int(r1), c0, c1))
        area = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in blocks)
        cost = area + _BLOCK_ELEMENTS * k
        if area <= _BLOCK_GAIN * n * m and cost < best_cost:
            best, best_cost = tuple(blocks), cost
    return best


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


FOLD_KEYS = ("rows", "cols", "vals", "vals_fast", "fold", "fold_fast", "e_lo", "e_hi")


def is_fold_key(key: str) -> bool:
    """True for the arrays of the folding operator and energy grid (see build_obs_data)."""
    return key in FOLD_KEYS or key.startswith("fold")


def fold_data(obs: Any) -> tuple[dict[str, np.ndarray], bool, Blocks]:
    """The folding operator's arrays (numpy) and storage: ``(arrays, sparse, blocks)``."""
    d, sparse, blocks = _operator(obs.fold)
    d["e_lo"] = np.asarray(obs.e_lo, dtype=np.float64)
    d["e_hi"] = np.asarray(obs.e_hi, dtype=np.float64)
    return d, sparse, blocks


def _operator(fold: Any) -> tuple[dict[str, np.ndarray], bool, Blocks]:
    """Arrays of a folding matrix (scipy sparse or dense) as :meth:`ObsEval.fold` reads
    them: COO triplets when large and sparse, else dense, whole or in row blocks."""
    n, m = fold.shape
    d: dict[str, np.ndarray] = {}
    nnz = getattr(fold, "nnz", n * m)
    sparse = n * m > _DENSE_MAX and nnz < 0.3 * n * m
    blocks: Blocks = ()
    if sparse:
        coo = fold.tocoo()
        d["rows"] = np.asarray(coo.row, dtype=np.int32)
        d["cols"] = np.asarray(coo.col, dtype=np.int32)
        d["vals"] = np.asarray(coo.data, dtype=np.float64)
        d["vals_fast"] = np.asarray(coo.data, dtype=FOLD_DTYPE)
    else:
        dense = np.asarray(fold.toarray() if hasattr(fold, "toarray") else fold,
                           dtype=np.float64)
        blocks = fold_blocks(dense != 0)
        if blocks:
            for j, (r0, r1, c0, c1) in enumerate(blocks):
                d[f"fold{j}"] = np.ascontiguousarray(dense[r0:r1, c0:c1])
                d[f"fold{j}_fast"] = d[f"fold{j}"].astype(FOLD_DTYPE)
        else:
            d["fold"] = dense
            d["fold_fast"] = dense.astype(FOLD_DTYPE)
    return d, sparse, blocks


# Low-count spectra (ungrouped C-stat): a channel without counts (and, for W-stat,
# without background counts) adds only -m_c to the log-likelihood, so those channels
# together add -(their column sums) . flux: one dot product over the energies. The
# samplers' log-density then folds only the other ("active") rows. Their number is
# padded to a power of two (zero rows), so spectra of one source share compiled
# programs; the active path is used when it keeps at most this fraction of the rows.
_ACTIVE_MAX = 0.5
ActiveLayout = tuple[bool, Blocks]  # (sparse, blocks) of the active rows' operator (no blocks)


def active_fold(obs: Any, mode: str,
                stat: str) -> tuple[dict[str, np.ndarray], ActiveLayout] | None:
    """Arrays of the active-rows path (keys ``act_*`` and ``idle_colsum``), or None.

    For C-stat without background (``mode="none"``) and W-stat only: a Bayesian or
    modelled background has terms of its own in every channel. Rows whose counts are
    zero (and background counts, for W-stat) are folded through their column sums
    (float64), the others as the full operator is (see :func:`_operator`).
    """
    if stat not in ("cstat", "wstat") or mode not in ("none", "wstat"):
        return None
    counts = np.asarray(obs.counts, dtype=np.float64)
    active = counts > 0
    if mode == "wstat":
        active |= np.asarray(obs.background, dtype=np.float64) > 0
    rows = np.flatnonzero(active)
    size = max(8, 1 << int(max(rows.size - 1, 1)).bit_length())
    if size > _ACTIVE_MAX * counts.size:
        return None
    import scipy.sparse as sp

    fold = sp.csr_array(obs.fold)
    sub = sp.vstack([fold[rows], sp.csr_array((size - rows.size, fold.shape[1]))],
                    format="csr")
    # whole and dense, or COO with its entries padded to a power of two: the shapes
    # depend on the number of active rows (and entries) only through those powers
    sparse = size * fold.shape[1] > _DENSE_MAX
    if sparse:
        coo = sub.tocoo()
        extra = (1 << int(max(coo.nnz - 1, 1)).bit_length()) - coo.nnz
        vals = np.concatenate([coo.data, np.zeros(extra)])
        d = {"act_rows": np.concatenate([coo.row, np.zeros(extra)]).astype(np.int32),
             "act_cols": np.concatenate([coo.col, np.zeros(extra)]).astype(np.int32),
             "act_vals_fast": vals.astype(FOLD_DTYPE)}
    else:  # single precision only: only the samplers' log-density folds these rows
        d = {"act_fold_fast": sub.toarray().astype(FOLD_DTYPE)}
    idle = np.ones(counts.size, dtype=bool)
    idle[rows] = False
    d["idle_colsum"] = np.asarray(fold[np.flatnonzero(idle)].sum(axis=0),
                                  dtype=np.float64).ravel()
    # the active rows' spectrum arrays; the padding rows are empty (ratio 1 keeps
    # W-stat's profile finite there)
    fill = {"ratio": 1.0}
    for k, v in counts_data(obs, mode, stat).items():
        d[f"act_{k}"] = np.concatenate([v[rows], np.full(size - rows.size, fill.get(k, 0.0))])
    return d, (sparse, ())


def counts_data(obs: Any, mode: str, stat: str) -> dict[str, np.ndarray]:
    """The per-spectrum arrays (numpy): counts, ln(counts!), background, variances."""
    from scipy.special import gammaln

    counts = np.asarray(obs.counts, dtype=np.float64)
    d: dict[str, np.ndarray] = {
        "counts": counts,
        "lfact": gammaln(counts + 1.0),  # ln(counts!): a constant of the Poisson likelihood
    }
    if mode != "none":
        bkg = np.asarray(obs.background, dtype=np.float64)
        ratio = np.broadcast_to(np.asarray(obs.background_ratio, dtype=np.float64), bkg.shape)
        d["background"] = bkg
        d["lfact_bkg"] = gammaln(bkg + 1.0)
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
    return d


def build_obs_data(obs: Any, mode: str, stat: str) -> tuple[dict[str, Any], bool, Blocks]:
    """Arrays of one observation for the compiled functions, and the fold's storage.

    Returns ``(data, sparse, blocks)``: ``sparse`` when the fold is stored as COO
    triplets, ``blocks`` the row blocks of a dense fold (``()`` for one matrix,
    ``"fold"``; else ``"fold0"``, ``"fold1"``, ...; see :func:`fold_blocks`).
    The arrays are :func:`fold_data` (operator, with a single-precision copy for the
    samplers) and :func:`counts_data` (per spectrum).

    The energy grid is kept too (``e_lo``/``e_hi``) but the compiled functions use the
    problem's constant copy of it (see :class:`ObsEval`).
    """
    d, sparse, blocks = fold_data(obs)
    d.update(counts_data(obs, mode, stat))
    # device_put: a plain transfer (jnp.asarray compiled a small copy program per array)
    return {k: jax.device_put(v) for k, v in d.items()}, sparse, blocks


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
    def fold(flux: Any, d: Mapping[str, Any], sparse: bool, blocks: Blocks = (),
             fast: bool = False) -> Any:
        """Predicted counts (float64) of a photon flux per energy bin.

        ``fast``: with the single-precision copy of the operator (see FOLD_DTYPE).
        """
        sfx = "_fast" if fast else ""
        f = flux.astype(FOLD_DTYPE) if fast else flux
        if sparse:
            out = jax.ops.segment_sum(d["vals" + sfx] * f[d["cols"]], d["rows"],
                                      num_segments=d["counts"].shape[0])
        elif blocks:
            out = jnp.concatenate([d[f"fold{j}{sfx}"] @ f[c0:c1]
                                   for j, (_, _, c0, c1) in enumerate(blocks)])
        else:
            out = d["fold" + sfx] @ f
        return out.astype(jnp.float64)

    def _flux(self, free: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[Any, Any]:
        """(photon flux per energy bin, instrument parameters) of this observation."""
        params, inst = self.params(free)
        e_lo, e_hi = self.grid if self.grid is not None else (d["e_lo"], d["e_hi"])
        if self.has_gain:
            e_lo = e_lo / inst["gain.slope"] - inst["gain.offset"]
            e_hi = e_hi / inst["gain.slope"] - inst["gain.offset"]
        return self.model.evaluate(params, e_lo, e_hi), inst

    def model_counts(self, free: Mapping[str, Any], d: Mapping[str, Any], sparse: bool,
                     blocks: Blocks = (), fast: bool = False) -> Any:
        """Expected source counts in each noticed group."""
        flux, inst = self._flux(free, d)
        counts = self.fold(flux, d, sparse, blocks, fast)
        if "cross.factor" in self.overrides:
            counts = counts * inst["cross.factor"]
        return counts

    def active_loglik(self, free: Mapping[str, Any], d: Mapping[str, Any], mode: str,
                      active: ActiveLayout) -> Any:
        """Log-likelihood terms whose sum is the spectrum's (single-precision fold of
        the active rows, see :func:`active_fold`): one per active row (padding rows
        add 0), then minus the idle rows' predicted counts."""
        view = {k[4:]: v for k, v in d.items() if k.startswith("act_")}
        flux, inst = self._flux(free, d)
        mu = self.fold(flux, view, *active, fast=True)
        idle = jnp.dot(d["idle_colsum"], flux)
        if "cross.factor" in self.overrides:
            mu, idle = mu * inst["cross.factor"], idle * inst["cross.factor"]
        if mode == "wstat":
            ll = lk.wstat(view["counts"], view["background"], mu, view["ratio"],
                          view["lfact"], view["lfact_bkg"])[0]
        else:
            ll = lk.cstat(view["counts"], mu, view["lfact"])[0]
        return jnp.concatenate([ll, -idle[None]])

    def terms(self, free: Mapping[str, Any], bkg_rate: Any, d: Mapping[str, Any], mode: str,
              stat: str, sparse: bool, blocks: Blocks = (),
              fast: bool = False) -> tuple[Any, Any, Any]:
        """(log-likelihood, deviance, expected counts) per bin (``fast``: see :meth:`fold`)."""
        mu = self.model_counts(free, d, sparse, blocks, fast)
        if stat.startswith("chi2"):
            var = None if stat == "chi2_model" else d["variance"]
            if mode == "subtract":
                ll, dev, _ = lk.chi2(d["net"], mu, var, extra_variance=d["extra_var"])
                return ll, dev, mu + d["ratio"] * d["background"]
            return lk.chi2(d["counts"], mu, var)
        lf, lfb = d.get("lfact"), d.get("lfact_bkg")
        if mode == "none":
            return lk.cstat(d["counts"], mu, lf)
        if mode == "wstat":
            return lk.wstat(d["counts"], d["background"], mu, d["ratio"], lf, lfb)
        if mode == "bayesian":
            if bkg_rate is None:  # optimisers: profile instead of sampling
                return lk.wstat(d["counts"], d["background"], mu, d["ratio"], lf, lfb)
            return lk.poisson_background(d["counts"], d["background"], mu,
                                         d["ratio"] * bkg_rate, bkg_rate, lf, lfb)
        # mode == "model": background spectral model folded through the same response,
        # predicting counts in the source region; the background spectrum sees 1/ratio of it
        assert self.bkg_spec is not None
        e_lo, e_hi = self.grid if self.grid is not None else (d["e_lo"], d["e_hi"])
        flux_b = self.bkg_spec.model.evaluate(self._bkg_params(free), e_lo, e_hi)
        nb = self.fold(flux_b, d, sparse, blocks, fast)
        return lk.poisson_background(d["counts"], d["background"], mu, nb, nb / d["ratio"],
                                     lf, lfb)
