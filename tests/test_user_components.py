"""User-defined components (plain JAX functions) and OGIP table models."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from jxspec_nb.errors import DataError, ModelError
from jxspec_nb.model import ParamSpec, load_table_model, parse_model, register_component

EDGES = np.geomspace(1.0, 10.0, 61)
LO, HI = EDGES[:-1], EDGES[1:]


def laplace_line(energy, LineE, Width, norm):
    return norm * jnp.exp(-jnp.abs(energy - LineE) / Width) / (2 * Width)


def test_user_additive_component_is_integrated_per_bin():
    register_component(
        "laplaceline", laplace_line, kind="additive", overwrite=True,
        parameters=[ParamSpec("LineE", 6.4, "keV", 0.0, 100.0),
                    ("Width", 0.3, "keV", 1e-6, 10.0),
                    {"name": "norm", "default": 1.0, "lower": 0.0}],
    )
    m = parse_model("tbabs*(powerlaw + laplaceline)")
    assert m.param_names[-3:] == ("laplaceline.LineE", "laplaceline.Width", "laplaceline.norm")
    assert m.parameter("laplaceline.Width").unit == "keV"
    solo = parse_model("laplaceline", max_rel_width=0.002)
    got = np.asarray(solo.evaluate({"laplaceline.LineE": 5.05, "laplaceline.norm": 2.0}, LO, HI))
    ref = [integrate.quad(lambda e: 2.0 * math.exp(-abs(e - 5.05) / 0.3) / 0.6, a, b,
                          points=[5.05] if a < 5.05 < b else None, epsrel=1e-12)[0]
           for a, b in zip(LO, HI)]
    cusp = (LO < 5.05) & (HI > 5.05)  # the bin holding the cusp: quadrature, not exact
    np.testing.assert_allclose(got[~cusp], np.array(ref)[~cusp], rtol=1e-6)
    np.testing.assert_allclose(got[cusp], np.array(ref)[cusp], rtol=1e-4)
    # usable under jit and grad like a built-in
    g = jax.grad(lambda w: jnp.sum(m.evaluate({"laplaceline.Width": w}, LO, HI)))(0.3)
    assert np.isfinite(float(g))


def test_user_integrated_and_multiplicative_components():
    register_component(
        "flatbin", lambda e_lo, e_hi, level: level * (e_hi - e_lo), [("level", 2.0)],
        integrated=True, overwrite=True)
    register_component(
        "linfactor", lambda energy, slope: 1.0 + slope * energy, [("slope", 0.0, "1/keV")],
        kind="multiplicative", overwrite=True)
    m = parse_model("linfactor*flatbin")
    got = np.asarray(m.evaluate({"linfactor.slope": 0.1, "flatbin.level": 3.0}, LO, HI))
    # bin average of (1 + 0.1 E) times 3 (HI - LO)
    np.testing.assert_allclose(got, 3.0 * (HI - LO) * (1 + 0.1 * 0.5 * (LO + HI)), rtol=1e-12)


def test_register_component_errors():
    with pytest.raises(ModelError, match="built-in"):
        register_component("powerlaw", laplace_line, [("LineE", 1.0)])
    with pytest.raises(ModelError, match="must start with a letter"):
        register_component("my_line", laplace_line, [("LineE", 1.0)])
    with pytest.raises(ModelError, match="repeated parameter names"):
        register_component("twice", laplace_line, [("a", 1.0), ("a", 2.0)])
    with pytest.raises(ModelError, match="kind must be"):
        register_component("convx", laplace_line, [("a", 1.0)], kind="convolution")
    register_component("onceonly", lambda e, a: a + 0 * e, [("a", 1.0)], overwrite=True)
    with pytest.raises(ModelError, match="already registered"):
        register_component("onceonly", lambda e, a: a + 0 * e, [("a", 1.0)])


def write_table(path, *, additive=True, redshift=False):
    """A 2-parameter OGIP table: spectrum = A * E_mid^-gamma on 40 bins (1-11 keV)."""
    from astropy.io import fits

    gammas = np.array([1.0, 1.5, 2.0, 2.5])
    amps = np.array([0.1, 1.0, 10.0])
    e = np.linspace(1.0, 11.0, 41)
    mid = 0.5 * (e[1:] + e[:-1])
    rows, spectra = [], []
    for a in amps:  # first parameter varies slowest
        for g in gammas:
            rows.append([a, g])
            per_bin = a * mid**-g * (e[1:] - e[:-1])
            spectra.append(per_bin if additive else np.exp(-a * mid**-g))
    prim = fits.PrimaryHDU()
    prim.header.update({"MODLNAME": "testtab", "ADDMODEL": additive, "REDSHIFT": redshift,
                        "HDUCLASS": "OGIP", "HDUCLAS1": "XSPEC TABLE MODEL"})
    par = fits.BinTableHDU.from_columns([
        fits.Column("NAME", "12A", array=["amp", "gamma"]),
        fits.Column("METHOD", "J", array=[1, 0]),
        fits.Column("INITIAL", "E", array=[1.0, 1.5]),
        fits.Column("DELTA", "E", array=[0.01, 0.01]),
        fits.Column("MINIMUM", "E", array=[0.1, 1.0]),
        fits.Column("BOTTOM", "E", array=[0.1, 1.0]),
        fits.Column("TOP", "E", array=[10.0, 2.5]),
        fits.Column("MAXIMUM", "E", array=[10.0, 2.5]),
        fits.Column("NUMBVALS", "J", array=[3, 4]),
        fits.Column("VALUE", "4E", array=[np.append(amps, 0.0), gammas]),
    ], name="PARAMETERS")
    par.header.update({"NINTPARM": 2, "NADDPARM": 0})
    ene = fits.BinTableHDU.from_columns([fits.Column("ENERG_LO", "E", array=e[:-1]),
                                         fits.Column("ENERG_HI", "E", array=e[1:])],
                                        name="ENERGIES")
    spec = fits.BinTableHDU.from_columns([fits.Column("PARAMVAL", "2E", array=np.array(rows)),
                                          fits.Column("INTPSPEC", "40E", array=np.array(spectra))],
                                         name="SPECTRA")
    fits.HDUList([prim, par, ene, spec]).writeto(path)
    return e, mid


def test_atable_interpolation_and_rebinning(tmp_path):
    e, mid = write_table(tmp_path / "tab.mod")
    name = load_table_model(tmp_path / "tab.mod")
    assert name == "testtab"
    m = parse_model("tbabs*testtab")
    assert m.param_names == ("tbabs.nH", "testtab.amp", "testtab.gamma", "testtab.norm")
    solo = parse_model("testtab")
    # at a grid point on the table's own bins: the tabulated values
    got = np.asarray(solo.evaluate({"testtab.amp": 1.0, "testtab.gamma": 2.0}, e[:-1], e[1:]))
    np.testing.assert_allclose(got, mid**-2.0 * 0.25, rtol=1e-6)
    # between grid points: log-linear in amp (METHOD 1), linear in gamma
    p = {"testtab.amp": math.sqrt(10.0), "testtab.gamma": 1.75, "testtab.norm": 2.0}
    got = np.asarray(solo.evaluate(p, e[:-1], e[1:]))
    amp_interp = 0.5 * (1.0 + 10.0)  # halfway in log10(amp) between 1 and 10
    ref = 2.0 * amp_interp * 0.5 * (mid**-1.5 + mid**-2.0) * 0.25
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # rebinned onto another grid conserving photons; zero outside the table
    fine = np.linspace(0.5, 12.0, 461)
    out = np.asarray(solo.evaluate(p, fine[:-1], fine[1:]))
    assert out.sum() == pytest.approx(ref.sum(), rel=1e-6)
    assert out[fine[1:] <= 1.0].sum() == 0.0 and out[fine[:-1] >= 11.0].sum() == 0.0
    g = jax.grad(lambda x: jnp.sum(solo.evaluate({"testtab.gamma": x}, e[:-1], e[1:])))(1.75)
    assert float(g) < 0


def test_mtable_and_bad_file(tmp_path):
    e, mid = write_table(tmp_path / "mt.mod", additive=False)
    name = load_table_model(tmp_path / "mt.mod", name="mtab")
    m = parse_model(f"{name}*constadd")
    got = np.asarray(m.evaluate({"mtab.amp": 1.0, "mtab.gamma": 1.0}, e[:-1], e[1:]))
    np.testing.assert_allclose(got / (e[1:] - e[:-1]), np.exp(-1.0 / mid), rtol=1e-6)
    outside = np.asarray(m.evaluate({}, np.array([20.0]), np.array([21.0])))
    assert outside[0] == pytest.approx(1.0)  # factor 1 outside the table
    (tmp_path / "junk.mod").write_text("not fits")
    with pytest.raises(DataError, match="junk.mod"):
        load_table_model(tmp_path / "junk.mod")
