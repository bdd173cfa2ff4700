"""High-resolution spectroscopy: the Fe XXV He-alpha complex of Perseus (Hitomi / XRISM).

The nine-line model of the jaxspec paper (Appendix B): nine Gaussian lines of
tabulated rest energies, one common velocity broadening, one bulk shift, the
cluster redshift with a Gaussian prior, a small energy perturbation per line,
free line normalisations and a flat continuum baseline, fitted in 6.49-6.61 keV
(observed frame). Joint fits add a cross-normalisation, a gain slope and an
energy offset for every observation after the first.

Model (photon flux, every line a ``gaussian`` of zero intrinsic width)::

    vbroad(zashift(vashift:bulk(gaussian:w + gaussian:x + ...))) + constadd

* ``zashift.Redshift`` = z, prior N(0.017284, 5e-5) (Hitomi Collaboration 2018);
* ``bulk.Velocity`` = v_bulk in km/s (E_obs = E (1 - v/c); the paper's
  ``delta = v_bulk / c`` with prior N(0, 1e-3), i.e. N(0, 299.79 km/s));
* ``vbroad.Sigma`` = Sigma = sigma_v / c. **Convention:** each line's Gaussian
  standard deviation is ``Sigma x E_obs``, the line's *observed* energy (the
  broadening is applied after the shifts), so ``sigma_v = c Sigma`` is the
  line-of-sight velocity dispersion in the observer frame, as in the paper;
* ``<line>.LineE`` = E_tab + dE, dE ~ N(0, 1e-4 keV) per line. The paper adds
  its perturbation to the observed energy; here it is in the rest frame, i.e. a
  prior 1.7 % wider in the observed frame (immaterial at 0.1 eV);
* ``<line>.norm`` photons/cm^2/s; ``constadd.norm`` the continuum baseline
  (photons/cm^2/s/keV, folded through the ARF: the paper's count-rate baseline
  up to the ARF's 0.2 % slope across the band).

``vashift`` shifts by E (1 - v/c) where the paper divides by (1 + delta): the two
agree to (v/c)^2 ~ 3e-8, a few meV.

Typical use (the same text works as an ``%%xmodel`` cell)::

    from jxspec_nb.inference import fit
    from jxspec_nb.highres import (load_perseus_sxs, perseus_init, perseus_spec,
                                   velocity_summary)

    sxs = load_perseus_sxs("../shared/data")           # 5 eV Gaussian RMF, 42 x 284 fold
    spec = perseus_spec()                               # or model_with_priors(perseus_model_text())
    result = fit(spec, sxs, method="vi", steps=100_000, optimizer="adamw",
                 learning_rate=5e-4, init=perseus_init(spec, sxs))
    velocity_summary(result)        # sigma_v, v_bulk (km/s) with quantiles and sd
    result.plot_elbo(); result.plot_ppc()               # ELBO curve, posterior predictive

A joint fit: ``perseus_spec(observations=["sxs", "resolve"])`` with
``fit(spec, [sxs, load_perseus_resolve(...)], ...)`` (observation names must match).
Start every fit from :func:`perseus_init`: from random prior draws a chain can
lock onto a mode where the lines are shifted by one line spacing.

Priors whose parameter has hard limits (line energies, redshift, velocity) are
written as ``TruncatedNormal(loc, scale, low=loc-5 scale, high=loc+5 scale)``:
the same as a normal prior to 6e-7 in probability, and accepted by
:func:`~jxspec_nb.inference.model_with_priors`, which refuses a plain Normal on a
parameter with finite hard limits.

The line norm prior is ``LogUniform(1e-5, 1e-3)`` = 10^U(-5, -3): Table B.1's
``10^U(-5, -4)`` cannot hold its own w-line posterior (2.4e-4 > 1e-4), so its upper
end is raised by a decade; its floor of 1e-5 (about 100 SXS counts in this exposure)
is kept. A lower floor lets the weakest satellites (t, and r, 1.8 eV from k: a third
of the 5 eV FWHM) run down a long flat tail in log-norm along which k and r trade
flux; NUTS chains then adapt different step sizes there. Measured with the floor at
1e-6 (4 x (1000 + 1000), seeds 0-2): 40-100 divergences and max R-hat 1.02-1.07
(k.norm, r.norm, q.norm), 25-60 leapfrog steps per iteration; with 1e-5: 2-9
divergences, max R-hat 1.004-1.007, 19-25 steps, and sigma_v moves by 0.3 km/s.

Results on the real data (this package, 2-core CPU shared with other jobs):

* Hitomi SXS alone (ObsID 100040040, 42 file-grouped bins, 5 eV Gaussian RMF):
  NUTS 4 x (1000 + 1000): sigma_v = 187.0 +/- 4.9 km/s, v_bulk = 41.9 +/- 16.7 km/s
  (max R-hat < 1.01, a few divergences); VI, 10^5 adamw steps at 5e-4, one ELBO
  particle: sigma_v = 187.2 +/- 4.8, v_bulk = 41.7 +/- 15.0 km/s. jaxspec 0.4.1 on
  the same data, response, priors and start (benchmarks/jaxspec_side/perseus.py):
  VI sigma_v = 186.7 +/- 4.9 km/s, NUTS 186.9 +/- 5.1 km/s, in 711 s and 1969 s
  against 11.9 s and 12.7 s here (2-core CPU, compilation included). The paper
  (three SXS observations, the real response, optimal binning): 196 +/- 4 and
  51 +/- 15 km/s.
* Joint SXS + XRISM Resolve (CAL1, 4.5 eV Gaussian RMF, 238 bins of 0.5 eV), NUTS
  4 x (1000 + 1000), 6 divergences, max R-hat 1.006: sigma_v = 192.8 +/- 2.8 km/s,
  v_bulk = 39.5 +/- 16.5 km/s; Resolve relative to SXS: cross-normalisation 1.10,
  gain slope 0.99961 (a 2.6 eV scale offset). (With the 1e-6 norm floor this fit
  took 298 s with 158 divergences.)
* Why sigma_v differs from the paper: (1) the synthetic response: sigma_v moves
  by -10 km/s per +1 eV of RMF FWHM (192.0 / 187.1 / 181.9 km/s for 4.5 / 5.0 /
  5.5 eV), and a Gaussian RMF has none of the real SXS low-energy tail;
  (2) the line list: the fit leaves residuals at 6.50-6.51 keV observed and a
  too-high baseline (C-stat 94 for 20 dof); one more line, free in 6.60-6.63 keV,
  lands at 6.6168 +/- 0.0010 keV rest (where the Fe XXIV 1s2s2p 4P / 1s2p2 4P
  satellites lie), halves the C-stat (44 for 18 dof) and gives sigma_v = 199 +/- 5
  km/s and a w-line norm of 2.40e-4, the paper's values; (3) one observation of
  the paper's three. v_bulk is set by the redshift prior: the data fix the total
  shift c((1+z)(1+v/c) - 1) to +/- 7 km/s, and z's prior sd (5e-5 = 15 km/s)
  becomes v_bulk's uncertainty, as in the paper.

Example:
    >>> from jxspec_nb.highres import perseus_model_text
    >>> text = perseus_model_text()
    >>> text.splitlines()[0][:40]
    'vbroad(zashift(vashift:bulk(gaussian:w +'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "C_KM_S",
    "FE_HE_ALPHA_LINES",
    "PERSEUS_REDSHIFT",
    "Line",
    "VelocitySummary",
    "PERSEUS_SXS_FIT",
    "load_perseus_resolve",
    "load_perseus_sxs",
    "perseus_init",
    "plot_velocities",
    "simulate_sxs",
    "perseus_model_text",
    "perseus_spec",
    "velocity_summary",
]

C_KM_S = 299792.458
"""Speed of light in km/s."""

PERSEUS_REDSHIFT = (0.017284, 5e-5)
"""Perseus redshift prior (mean, sd): Hitomi Collaboration 2018, PASJ 70, 9."""

_HC_KEV_ANGSTROM = 12.398419843320026


class Line(NamedTuple):
    """One emission line of the complex.

    Attributes:
        label: component label in the model (Gabriel's letter: w, x, y, z, j, k, ...).
        ion: emitting ion.
        transition: upper -> lower level.
        energy: rest energy in keV.
        source: where the energy comes from.
    """

    label: str
    ion: str
    transition: str
    energy: float
    source: str


# Bitter et al. (1993, Phys. Scr. 47, 87; tokamak crystal spectra) wavelengths in
# Angstrom: w 1.8498; satellites t 1.8566, q 1.8605, k 1.8626, r 1.8631, j 1.8654.
# Their absolute scale is ~2 eV above the He-like energies below (Bitter's w is
# 6.7026 keV), so each satellite is placed *relative to w*:
# E = 6.7004 keV x lambda_w / lambda; the same rule puts z at 6.6365 keV (tabulated
# 6.6366), y at 6.6672 (6.6676) and x at 6.6815 (6.6823): within 1 eV.
_BITTER_W = 1.8498
_BITTER = {"t": 1.8566, "q": 1.8605, "k": 1.8626, "r": 1.8631, "j": 1.8654}
_HE = "Hitomi Collaboration 2016, Nature 535, 117 (via jaxspec paper, App. B)"


def _satellite(label: str, transition: str) -> Line:
    energy = round(6.7004 * _BITTER_W / _BITTER[label], 4)
    return Line(label, "Fe XXIV", transition, energy,
                "Bitter et al. 1993, Phys. Scr. 47, 87 (wavelength relative to w)")


FE_HE_ALPHA_LINES: tuple[Line, ...] = (
    Line("w", "Fe XXV", "1s2p 1P1 -> 1s2 1S0 (resonance)", 6.7004, _HE),
    Line("x", "Fe XXV", "1s2p 3P2 -> 1s2 1S0 (intercombination)", 6.6823, _HE),
    Line("y", "Fe XXV", "1s2p 3P1 -> 1s2 1S0 (intercombination)", 6.6676, _HE),
    Line("z", "Fe XXV", "1s2s 3S1 -> 1s2 1S0 (forbidden)", 6.6366, _HE),
    _satellite("t", "1s2s2p (1P) 2P1/2 -> 1s2 2s 2S1/2"),
    _satellite("q", "1s2s2p (3P) 2P3/2 -> 1s2 2s 2S1/2"),
    _satellite("k", "1s2p2 2D3/2 -> 1s2 2p 2P1/2 (dielectronic)"),
    _satellite("r", "1s2s2p (3P) 2P1/2 -> 1s2 2s 2S1/2"),
    _satellite("j", "1s2p2 2D5/2 -> 1s2 2p 2P3/2 (dielectronic)"),
)
"""The nine lines: Fe XXV w, x, y, z and Fe XXIV satellites t, q, k, r, j (keV, rest).

Rest energies (keV): w 6.7004, x 6.6823, y 6.6676, z 6.6366 (Hitomi Collaboration
2016); t 6.6759, q 6.6619, k 6.6544, r 6.6526, j 6.6444 (Bitter et al. 1993,
placed relative to w). The satellite energies are good to ~1 eV, i.e. more
loosely than the 0.1 eV (1e-4 keV) energy-perturbation prior; they are weak lines
and barely weigh on the velocity results.
"""


def _tn(loc: float, scale: float, width: float = 5.0) -> str:
    return (f"TruncatedNormal({loc:.10g}, {scale:.10g}, low={loc - width * scale:.10g}, "
            f"high={loc + width * scale:.10g})")


def _obs_keys(observations: int | Sequence[str]) -> list[str]:
    if isinstance(observations, int):
        return [str(i) for i in range(observations)]
    return [str(o) for o in observations]


def perseus_model_text(
    lines: Sequence[Line] = FE_HE_ALPHA_LINES,
    *,
    observations: int | Sequence[str] = 1,
    redshift: tuple[float, float] = PERSEUS_REDSHIFT,
    energy_sd: float = 1e-4,
    norm_prior: str = "LogUniform(1e-5, 1e-3)",
    sigma_prior: str = "LogUniform(1e-5, 1e-3)",
    bulk_sd_km_s: float = 1e-3 * C_KM_S,
    baseline_prior: str = "LogUniform(1e-7, 1e-1)",
    gain_sd: float = 1e-2,
    offset_sd_kev: float = 1e-3,
    cross_prior: str = "LogUniform(0.5, 2)",
) -> str:
    """The ``%%xmodel`` cell text of the Perseus nine-line model (jaxspec paper App. B).

    Args:
        lines: the lines (default: :data:`FE_HE_ALPHA_LINES`).
        observations: number of observations of a joint fit, or their names. Every
            observation has its own continuum baseline; those after the first get
            a cross-normalisation (``cross.factor[k]``), a gain slope
            (``gain.slope[k]`` ~ N(1, gain_sd)) and an energy offset
            (``gain.offset[k]`` ~ N(0, offset_sd_kev) keV).
        redshift: (mean, sd) of the Gaussian redshift prior.
        energy_sd: sd (keV, rest frame) of each line's energy perturbation.
        norm_prior: prior of every line norm (photons/cm^2/s).
        sigma_prior: prior of Sigma = sigma_v / c (paper: 10^U(-5, -3)).
        bulk_sd_km_s: sd of the bulk-velocity prior (paper: 1e-3 c).
        baseline_prior: prior of the continuum baseline(s) (photons/cm^2/s/keV).
        gain_sd, offset_sd_kev, cross_prior: instrument priors of joint fits.

    Returns:
        Text for :func:`~jxspec_nb.inference.model_with_priors` or ``%%xmodel``.

    Example:
        >>> print(perseus_model_text(observations=["sxs", "resolve"]).splitlines()[-1])
        gain.offset[resolve] ~ TruncatedNormal(0, 0.001, low=-0.005, high=0.005)
    """
    labels = [ln.label for ln in lines]
    if len(set(labels)) != len(labels):
        raise ValueError(f"line labels must be unique, got {labels}")
    sum_expr = " + ".join(f"gaussian:{lab}" for lab in labels)
    out = [f"vbroad(zashift(vashift:bulk({sum_expr}))) + constadd",
           "# velocity broadening Sigma = sigma_v / c (width = Sigma x observed energy)",
           f"vbroad.Sigma ~ {sigma_prior}",
           "# cosmological redshift and bulk line-of-sight velocity (km/s)",
           f"zashift.Redshift ~ {_tn(*redshift)}",
           f"bulk.Velocity ~ {_tn(0.0, bulk_sd_km_s)}",
           "# lines: rest energy = tabulated + N(0, energy_sd) perturbation; no intrinsic width"]
    for ln in lines:
        out.append(f"{ln.label}.LineE ~ {_tn(ln.energy, energy_sd)}  # {ln.ion} {ln.label}")
        out.append(f"{ln.label}.Sigma = 0")
        out.append(f"{ln.label}.norm ~ {norm_prior}")
    keys = _obs_keys(observations)
    out.append("# continuum baseline (per observation in joint fits)")
    out.append(f"constadd.norm ~ {baseline_prior}")
    for key in keys[1:]:
        out.append(f"constadd.norm[{key}] ~ {baseline_prior}")
        out.append(f"cross.factor[{key}] ~ {cross_prior}")
        out.append(f"gain.slope[{key}] ~ {_tn(1.0, gain_sd)}")
        out.append(f"gain.offset[{key}] ~ {_tn(0.0, offset_sd_kev)}")
    return "\n".join(out)


def perseus_spec(lines: Sequence[Line] = FE_HE_ALPHA_LINES, **kwargs: Any) -> Any:
    """The Perseus model with priors as a :class:`~jxspec_nb.inference.ModelSpec`.

    Args:
        lines: the lines (default: the nine of :data:`FE_HE_ALPHA_LINES`).
        **kwargs: passed to :func:`perseus_model_text`.

    Example:
        >>> spec = perseus_spec()                                   # doctest: +SKIP
        >>> len(spec.free_names)                                    # doctest: +SKIP
        22
    """
    from .inference import model_with_priors

    return model_with_priors(perseus_model_text(lines, **kwargs))


# ------------------------------------------------------------------- data
_SXS = ("hitomi_sxs/perseus", "ah100040040sxs_src_grp.pha.gz", "ah100040040sxs.arf.gz")
_RESOLVE = ("xrism_resolve/perseus", "xa_merged_p0px1000_Hp.pi.gz",
            "rsl_standard_GVclosed.arf")
BAND = (6.49, 6.61)


def _find(root: str | os.PathLike[str] | None, sub: str, name: str) -> Path:
    candidates = []
    if root is not None:
        r = Path(root)
        candidates += [r / sub / name, r / name]
    env = os.environ.get("JXSPEC_NB_SHARED_DATA")
    if env:
        candidates.append(Path(env) / sub / name)
    candidates.append(Path("../shared/data") / sub / name)
    for c in candidates:
        if c.exists():
            return c
    from .errors import DataError

    raise DataError(f"cannot find {sub}/{name}; pass root= the folder that holds {sub}/ "
                    "(or set JXSPEC_NB_SHARED_DATA)", path=str(candidates[0]))


def _load(spec: tuple[str, str, str], root: Any, fwhm_ev: float, band: Any,
          group: str | None, name: str) -> Any:
    from .data import load_observation

    sub, pha, arf = spec
    return load_observation(_find(root, sub, pha), arf=_find(root, sub, arf),
                            rmf=f"gaussian:{fwhm_ev:g}eV", bkg=None, band=band, group=group,
                            name=name)


def load_perseus_sxs(root: str | os.PathLike[str] | None = None, *, fwhm_ev: float = 5.0,
                     band: tuple[float, float] | None = BAND, group: str | None = None,
                     name: str = "sxs") -> Any:
    """Hitomi SXS Perseus (ObsID 100040040) with a synthetic Gaussian RMF.

    Args:
        root: the shared data folder (holding ``hitomi_sxs/perseus``); default:
            ``$JXSPEC_NB_SHARED_DATA`` then ``../shared/data``.
        fwhm_ev: FWHM of the Gaussian RMF (eV); the real SXS core is ~5 eV.
        band: (lo, hi) keV observed; default the paper's 6.49-6.61 keV.
        group: None keeps the file's grouping; "optimal", "min:N" or "none".
        name: observation name (used for per-observation parameters).

    Example:
        >>> sxs = load_perseus_sxs("../shared/data")                # doctest: +SKIP
        >>> sxs.fold.shape                                          # doctest: +SKIP
        (42, 284)
    """
    return _load(_SXS, root, fwhm_ev, band, group, name)


def load_perseus_resolve(root: str | os.PathLike[str] | None = None, *, fwhm_ev: float = 4.5,
                         band: tuple[float, float] | None = BAND, group: str | None = None,
                         name: str = "resolve") -> Any:
    """XRISM Resolve Perseus (CAL1, ObsID 000154000) with a synthetic Gaussian RMF.

    Same arguments as :func:`load_perseus_sxs` (default FWHM 4.5 eV; ungrouped
    0.5 eV channels unless ``group`` says otherwise).

    Example:
        >>> res = load_perseus_resolve("../shared/data")            # doctest: +SKIP
        >>> res.fold.shape                                          # doctest: +SKIP
        (238, 284)
    """
    return _load(_RESOLVE, root, fwhm_ev, band, group, name)


# ------------------------------------------------------------ start point
def perseus_init(spec: Any, observations: Any, *, sigma: float = 5e-4) -> dict[str, float]:
    """A starting point for the Perseus fit: tabulated energies, z from its prior,
    no bulk shift, ``Sigma = sigma`` and line norms + baselines by non-negative
    least squares of the counts (a linear problem once positions and widths are fixed).

    Pass it as ``fit(..., init=perseus_init(spec, obs))``: started from prior draws,
    chains can settle on a secondary mode where the lines are shifted by one
    line spacing (~800 km/s).

    Args:
        spec: the :class:`~jxspec_nb.inference.ModelSpec` (e.g. :func:`perseus_spec`).
        observations: an Observation or a list (joint fit; the first sets the norms).
        sigma: starting Sigma = sigma_v / c.

    Example:
        >>> init = perseus_init(spec, sxs)                           # doctest: +SKIP
        >>> fit(spec, sxs, method="nuts", init=init)                 # doctest: +SKIP
    """
    from scipy.optimize import nnls

    obs_list = list(observations) if isinstance(observations, list | tuple) else [observations]
    model = spec.model
    values: dict[str, float] = dict(spec.fixed)
    for name, prior in spec.prior_defs.items():
        base = name.split("[")[0]
        if base.endswith(".LineE") or base in ("zashift.Redshift", "bulk.Velocity"):
            values[name] = float(prior.args[0])
        elif base == "gain.slope" or base == "cross.factor":
            values[name] = 1.0
        elif base == "gain.offset":
            values[name] = 0.0
    values["vbroad.Sigma"] = sigma
    labels = [c for c in model.additive_components if c != "constadd"]
    for k, obs in enumerate(obs_list):
        cols = []
        for lab in [*labels, "constadd"]:
            p = {n: values.get(n, 0.0) for n in model.param_names if n.endswith(".LineE")}
            p.update({n: 0.0 for n in model.param_names if n.endswith(".norm")})
            p.update({n: v for n, v in values.items() if "[" not in n})
            p[f"{lab}.norm"] = 1.0
            flux = np.asarray(model.evaluate(p, obs.e_lo, obs.e_hi))
            cols.append(obs.fold @ flux)
        a = np.stack(cols, axis=1)
        scale = np.maximum(a.max(axis=0), 1e-300)
        coef, _ = nnls(a / scale, np.asarray(obs.counts, dtype=np.float64))
        coef = coef / scale
        if k == 0:
            for lab, c in zip(labels, coef[:-1], strict=True):
                values[f"{lab}.norm"] = float(c)
            values["constadd.norm"] = float(coef[-1])
        else:
            values[f"constadd.norm[{k}]"] = float(coef[-1])
    out = {}
    for name, prior in spec.prior_defs.items():
        lo, hi = prior.support
        v = values.get(name, prior.median())
        if prior.kind == "LogUniform":  # stay a little inside, in log space
            v = float(np.clip(v, lo * 1.5, hi / 1.5))
        elif np.isfinite(hi - lo):
            v = float(np.clip(v, lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo)))
        out[name] = float(v)
    return out


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class Quantity:
    """A posterior summary: median, 16 and 84 % quantiles, mean and sd."""

    median: float
    q16: float
    q84: float
    mean: float
    sd: float

    @classmethod
    def of(cls, x: np.ndarray) -> Quantity:
        q16, q50, q84 = np.percentile(x, [16, 50, 84])
        return cls(float(q50), float(q16), float(q84), float(np.mean(x)), float(np.std(x)))

    def __str__(self) -> str:
        return f"{self.median:.1f} +{self.q84 - self.median:.1f} -{self.median - self.q16:.1f}"


@dataclass(frozen=True)
class VelocitySummary:
    """Velocities of a Perseus fit in km/s (observer frame).

    Attributes:
        sigma_v: line-of-sight velocity dispersion c Sigma.
        v_bulk: bulk velocity (positive = receding).
        redshift: cosmological redshift (dimensionless).
        v_total: c ((1+z)(1 + v_bulk/c) - 1), the total line-of-sight shift.
        n_draws: posterior draws used.
    """

    sigma_v: Quantity
    v_bulk: Quantity
    redshift: Quantity
    v_total: Quantity
    n_draws: int

    def __repr__(self) -> str:
        return (f"VelocitySummary(sigma_v = {self.sigma_v} km/s, v_bulk = {self.v_bulk} km/s, "
                f"z = {self.redshift.median:.6f} +/- {self.redshift.sd:.6f}, "
                f"{self.n_draws} draws)")

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Plain nested dict (for JSON)."""
        return {k: vars(getattr(self, k)) for k in ("sigma_v", "v_bulk", "redshift", "v_total")}


def velocity_summary(result: Any) -> VelocitySummary:
    """sigma_v and v_bulk in km/s (with the redshift) from a Perseus :class:`FitResult`.

    Example:
        >>> velocity_summary(result).sigma_v.median                 # doctest: +SKIP
        183.2
    """
    s = result.samples()
    sigma = np.asarray(s["vbroad.Sigma"], dtype=np.float64) * C_KM_S
    v = np.asarray(s["bulk.Velocity"], dtype=np.float64)
    z = np.asarray(s["zashift.Redshift"], dtype=np.float64)
    total = C_KM_S * ((1.0 + z) / (1.0 - v / C_KM_S) - 1.0)
    return VelocitySummary(Quantity.of(sigma), Quantity.of(v), Quantity.of(z),
                           Quantity.of(total), int(sigma.size))


def plot_velocities(result: Any, *, reference: bool = True) -> Any:
    """Histograms of sigma_v and v_bulk (km/s) and z, with the paper's values.

    Args:
        result: a Perseus :class:`~jxspec_nb.results.FitResult`.
        reference: mark the jaxspec paper's 196 +/- 4 and 51 +/- 15 km/s.

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = plot_velocities(result)                          # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    s = result.samples()
    draws = {
        "sigma_v (km/s)": np.asarray(s["vbroad.Sigma"]) * C_KM_S,
        "v_bulk (km/s)": np.asarray(s["bulk.Velocity"]),
        "z": np.asarray(s["zashift.Redshift"]),
    }
    refs = {"sigma_v (km/s)": (196.0, 4.0), "v_bulk (km/s)": (51.0, 15.0),
            "z": PERSEUS_REDSHIFT}
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
    for ax, (label, x) in zip(axes, draws.items(), strict=True):
        ax.hist(x, bins=40, density=True, color="C0", alpha=0.7, label=result.method)
        if reference:
            mu, sd = refs[label]
            ax.axvspan(mu - sd, mu + sd, color="C1", alpha=0.25,
                       label="prior" if label == "z" else "jaxspec paper")
        ax.set_xlabel(label)
        ax.set_yticks([])
    axes[0].legend(fontsize="small")
    return fig


# --------------------------------------------------------------- simulation
PERSEUS_SXS_FIT: dict[str, float] = {
    "vbroad.Sigma": 6.26e-4,
    "zashift.Redshift": 0.017287,
    "bulk.Velocity": 43.5,
    "w.norm": 2.26e-4, "x.norm": 5.58e-5, "y.norm": 7.06e-5, "z.norm": 8.29e-5,
    "t.norm": 6.4e-7, "q.norm": 1.48e-5, "k.norm": 3.36e-5, "r.norm": 1.0e-6,
    "j.norm": 2.25e-5,
    "constadd.norm": 1.97e-3,
    **{f"{ln.label}.LineE": ln.energy for ln in FE_HE_ALPHA_LINES},
    **{f"{ln.label}.Sigma": 0.0 for ln in FE_HE_ALPHA_LINES},
}
"""Posterior medians of a NUTS fit (4 x (500 + 500)) of Hitomi SXS Perseus (ObsID
100040040, 5 eV Gaussian RMF, 6.49-6.61 keV, line norms LogUniform(1e-7, 1e-2));
line energies at their tabulated values. Used by :func:`simulate_sxs`."""

SXS_EXPOSURE = 68133.5
"""EXPOSURE (s) of the Hitomi SXS Perseus spectrum ah100040040sxs_src_grp.pha."""
SXS_AREA_CM2 = (157.19, -2.51)
"""SXS ARF of that observation near 6.55 keV: (area at 6.55 keV, slope per keV), cm^2."""


def simulate_sxs(params: Any = None, *, exposure: float = SXS_EXPOSURE, fwhm_ev: float = 5.0,
                 band: tuple[float, float] = BAND, channels_per_bin: int = 6,
                 seed: int = 0, name: str = "simulated_sxs") -> Any:
    """A Hitomi-SXS-like Perseus spectrum simulated without any file.

    0.5 eV channels from 6.3 to 6.8 keV, the SXS effective area near 6.5 keV as a
    straight line (:data:`SXS_AREA_CM2`), a Gaussian RMF, bins of
    ``channels_per_bin`` channels (3 eV, as the real file's grouping), and Poisson
    counts of the Perseus model at ``params`` (default :data:`PERSEUS_SXS_FIT`).

    Args:
        params: model parameter values of :func:`perseus_spec`'s model.
        exposure: seconds.
        fwhm_ev: FWHM of the Gaussian RMF (eV).
        band: noticed band (keV).
        channels_per_bin: channels grouped per bin.
        seed: random seed of the Poisson draw.
        name: observation name.

    Returns:
        An :class:`~jxspec_nb.data.Observation` (same shape of problem as the real
        one: fits of it take the same compiled code).

    Example:
        >>> obs = simulate_sxs(seed=1)
        >>> obs.counts.shape
        (39,)
    """
    from .data import ARF, gaussian_rmf, load_observation
    from .data.ogip import Spectrum
    from .model import parse_model

    edges = np.round(np.arange(12600, 13601) * 0.0005, 10)  # 6.3-6.8 keV, 0.5 eV
    lo, hi = edges[:-1], edges[1:]
    n = lo.size
    area = SXS_AREA_CM2[0] + SXS_AREA_CM2[1] * (0.5 * (lo + hi) - 6.55)
    arf = ARF(lo, hi, area)
    rmf = gaussian_rmf(edges, fwhm_ev * 1e-3)
    grouping = np.where(np.arange(n) % channels_per_bin == 0, 1, -1).astype(np.int16)
    spectrum = Spectrum(
        path=Path(name + ".pha"), hdu="SPECTRUM", row=None, telescope="HITOMI",
        instrument="SXS (simulated)", hduclas2="TOTAL", channel=np.arange(n),
        counts=np.zeros(n), stat_err=None, sys_err=None, is_poisson=True,
        quality=np.zeros(n, dtype=np.int16), grouping=grouping, exposure=float(exposure),
        backscal=np.ones(n), areascal=np.ones(n), respfile=None, ancrfile=None,
        backfile=None)
    obs = load_observation(spectrum, rmf=rmf, arf=arf, bkg=None, band=band, name=name)
    model = parse_model(perseus_model_text().splitlines()[0])
    values = dict(PERSEUS_SXS_FIT if params is None else params)
    flux = np.asarray(model.evaluate(values, obs.e_lo, obs.e_hi))
    rng = np.random.default_rng(seed)
    return obs.with_counts(rng.poisson(obs.fold @ flux).astype(np.float64))


def line_energy_kev(wavelength_angstrom: float) -> float:
    """Photon energy (keV) of a wavelength in Angstrom.

    Example:
        >>> round(line_energy_kev(1.8498), 4)
        6.7026
    """
    return _HC_KEV_ANGSTROM / wavelength_angstrom

