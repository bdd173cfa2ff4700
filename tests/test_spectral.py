"""SpectralModel: parameter table, JAX transformations, parts, fluxes, repr, speed path."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jxspec_nb.errors import ModelError
from jxspec_nb.model import parse_model

EDGES = np.geomspace(0.3, 10.0, 201)
LO, HI = EDGES[:-1], EDGES[1:]
KEV = 1.602176634e-9


def test_parameter_table_follows_xspec():
    m = parse_model("tbabs*(zpowerlw + bbodyrad + gaussian)")
    p = {q.name: q for q in m.parameters}
    assert m.param_names == (
        "tbabs.nH", "zpowerlw.PhoIndex", "zpowerlw.Redshift", "zpowerlw.norm",
        "bbodyrad.kT", "bbodyrad.norm", "gaussian.LineE", "gaussian.Sigma", "gaussian.norm",
    )
    assert p["zpowerlw.Redshift"].frozen and not p["gaussian.LineE"].frozen
    assert p["bbodyrad.kT"].lower == 0.0 and p["bbodyrad.kT"].unit == "keV"
    assert p["tbabs.nH"].lower == 0.0 and p["tbabs.nH"].default == 1.0
    assert (p["gaussian.LineE"].default, p["gaussian.Sigma"].default) == (6.5, 0.1)
    assert p["powerlaw.PhoIndex" if False else "zpowerlw.PhoIndex"].default == 1.0
    assert m.free_names == tuple(n for n in m.param_names if n != "zpowerlw.Redshift")
    assert p["bbodyrad.norm"].component == "bbodyrad" and p["bbodyrad.norm"].parname == "norm"
    with pytest.raises(ModelError, match="did you mean 'tbabs.nH'"):
        m.parameter("tbabs.NH")


def test_defaults_missing_params_and_extra_keys():
    m = parse_model("powerlaw")
    a = m.evaluate({}, LO, HI)
    b = m.evaluate({"powerlaw.PhoIndex": 1.0, "powerlaw.norm": 1.0, "other.x": 3.0}, LO, HI)
    np.testing.assert_allclose(a, np.log(HI / LO), rtol=1e-12)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelError, match="must be scalars"):
        m.evaluate({"powerlaw.PhoIndex": np.array([1.0, 2.0])}, LO, HI)
    with pytest.raises(ModelError, match="0 < e_lo < e_hi"):
        m.evaluate({}, np.array([0.0, 1.0]), np.array([1.0, 2.0]))


def test_jit_grad_vmap_and_traced_grid():
    m = parse_model("tbabs*(powerlaw + bbodyrad)")
    names = m.param_names
    x0 = jnp.array([0.3, 1.8, 1e-3, 0.7, 20.0])

    def flux(x, lo=LO, hi=HI):
        return m.evaluate(dict(zip(names, x)), lo, hi)

    eager = flux(x0)
    np.testing.assert_allclose(jax.jit(flux)(x0), eager, rtol=1e-13)
    # the jnp path (energies traced, as in gain fits) agrees with the numpy one
    traced = jax.jit(lambda x, lo, hi: flux(x, lo, hi))(x0, jnp.asarray(LO), jnp.asarray(HI))
    rel = np.abs(np.asarray(traced) / np.asarray(eager) - 1)
    # identical except in bins holding an absorption edge: on a concrete grid the
    # bin average resolves the edge, on a traced grid Gauss-Legendre nodes sample it
    assert np.median(rel) < 1e-6 and np.mean(rel > 1e-3) < 0.05
    plain = parse_model("powerlaw + bbodyrad")
    traced = jax.jit(lambda lo, hi: plain.evaluate({}, lo, hi))(jnp.asarray(LO), jnp.asarray(HI))
    np.testing.assert_allclose(traced, plain.evaluate({}, LO, HI), rtol=1e-10)
    # gradient against central finite differences
    loss = jax.jit(lambda x: jnp.sum(jnp.log(flux(x))))
    g = np.asarray(jax.grad(loss)(x0))
    for i in range(5):
        h = 1e-6 * abs(float(x0[i]))
        fd = (loss(x0.at[i].add(h)) - loss(x0.at[i].add(-h))) / (2 * h)
        assert g[i] == pytest.approx(float(fd), rel=1e-5)
    # vmap over a batch equals a loop; Hessian (Laplace) is finite
    batch = jnp.stack([x0, x0.at[1].set(2.2), x0.at[3].set(1.1)])
    out = jax.vmap(flux)(batch)
    np.testing.assert_allclose(out[2], flux(batch[2]), rtol=1e-12)
    assert np.isfinite(np.asarray(jax.hessian(loss)(x0))).all()


def test_components_sum_to_total():
    for expr, params in [
        ("tbabs*(powerlaw + bbodyrad)", {"bbodyrad.norm": 30.0}),
        ("constant*tbabs*(diskbb + cutoffpl) + gaussian", {"gaussian.LineE": 2.0}),
        ("tbabs*cflux(powerlaw + bbodyrad)", {"cflux.lg10Flux": -11.0, "bbodyrad.norm": 100.0}),
        ("zashift(vbroad(gaussian + gaussian:fe_w) + constadd)",
         {"gaussian.LineE": 2.0, "fe_w.LineE": 3.0, "zashift.Redshift": 0.1}),
    ]:
        m = parse_model(expr)
        parts = m.evaluate_components(params, LO, HI)
        assert list(parts) == list(m.additive_components)
        total = np.asarray(m.evaluate(params, LO, HI))
        np.testing.assert_allclose(sum(np.asarray(v) for v in parts.values()), total,
                                   rtol=1e-10, atol=1e-15 * total.max())
        assert all(np.all(np.asarray(v) >= 0) for v in parts.values())


def test_powerlaw_fluxes_and_luminosity_closed_form():
    from astropy import units as u
    from astropy.cosmology import Planck18

    m = parse_model("powerlaw")
    p = {"powerlaw.PhoIndex": 1.7, "powerlaw.norm": 3e-3}
    a, b = 0.5, 7.0
    photons = 3e-3 * (b**-0.7 - a**-0.7) / -0.7
    energy = 3e-3 * (b**0.3 - a**0.3) / 0.3 * KEV
    assert float(m.photon_flux(p, a, b)) == pytest.approx(photons, rel=1e-9)
    assert float(m.energy_flux(p, a, b)) == pytest.approx(energy, rel=1e-6)
    d = 10 * u.kpc
    lum = float(m.luminosity(p, a, b, distance=d))
    assert lum == pytest.approx(4 * math.pi * d.to("cm").value ** 2 * energy, rel=1e-6)
    z = 0.1
    lum_z = float(m.luminosity(p, 2.0, 10.0, redshift=z))
    dl = Planck18.luminosity_distance(z).to("cm").value
    e_obs = 3e-3 * ((10 / 1.1) ** 0.3 - (2 / 1.1) ** 0.3) / 0.3 * KEV
    assert lum_z == pytest.approx(4 * math.pi * dl**2 * e_obs, rel=1e-6)
    with pytest.raises(ModelError, match="redshift or a distance"):
        m.luminosity(p, a, b)


def test_cflux_sets_the_requested_flux_and_convolutions_conserve_flux():
    m = parse_model("cflux(powerlaw + bbodyrad)")
    p = {"cflux.Emin": 0.5, "cflux.Emax": 7.0, "cflux.lg10Flux": -11.3, "bbodyrad.norm": 50.0}
    assert float(m.energy_flux(p, 0.5, 7.0)) == pytest.approx(10**-11.3, rel=1e-6)
    # numeric smoothing of a continuum (a materialised line well inside the grid)
    edges = np.linspace(3.0, 9.0, 601)
    lo, hi = edges[:-1], edges[1:]
    line = {"gaussian.LineE": 6.0, "gaussian.Sigma": 0.1, "gaussian.norm": 2.0}
    for expr, q in [("gsmooth(constant*gaussian)", {"gsmooth.Sig_6keV": 0.3}),
                    ("gsmooth(constant*gaussian)", {"gsmooth.Sig_6keV": 0.2,
                                                    "gsmooth.Index": 1.0}),
                    ("vbroad(constant*gaussian)", {"vbroad.Sigma": 0.02})]:
        got = float(np.sum(parse_model(expr).evaluate({**line, **q}, lo, hi)))
        assert got == pytest.approx(2.0, rel=1e-6), expr
    # shifts move photons without creating or losing any
    base = parse_model("bbodyrad")
    for expr, q, factor in [("zashift(bbodyrad)", {"zashift.Redshift": 0.5}, 1.5),
                            ("vashift(bbodyrad)", {"vashift.Velocity": 3e4},
                             1 / (1 - 3e4 / 299792.458))]:
        got = np.asarray(parse_model(expr).evaluate({"bbodyrad.kT": 1.0, **q}, LO, HI))
        ref = np.asarray(base.evaluate({"bbodyrad.kT": 1.0}, LO * factor, HI * factor))
        np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_shifts_match_redshifted_components():
    m = parse_model("zashift(powerlaw)")
    z = parse_model("zpowerlw")
    a = m.evaluate({"zashift.Redshift": 0.3, "powerlaw.PhoIndex": 2.0}, LO, HI)
    b = z.evaluate({"zpowerlw.Redshift": 0.3, "zpowerlw.PhoIndex": 2.0}, LO, HI)
    np.testing.assert_allclose(a, 1.3 * np.asarray(b), rtol=1e-10)
    g = parse_model("vashift(gaussian)")
    out = np.asarray(g.evaluate({"vashift.Velocity": 2.99792458e4, "gaussian.LineE": 6.0,
                                 "gaussian.Sigma": 0.0}, LO, HI))
    k = int(np.argmax(out))
    assert LO[k] <= 6.0 * 0.9 < HI[k] and out[k] == pytest.approx(1.0)


def test_velocity_broadening_of_lines_is_analytic():
    from scipy.special import ndtr

    # nine lines on a 0.5 eV microcalorimeter grid of 32768 bins: a numeric
    # convolution would need a 32768^2 kernel (refused); the analytic path is used
    edges = np.arange(32769) * 0.5e-3 + 0.2
    lo, hi = edges[:-1], edges[1:]
    expr = "vbroad(" + " + ".join(["gaussian"] * 9) + ")"
    m = parse_model(expr)
    energies = np.linspace(6.60, 6.70, 9)
    params = {"vbroad.Sigma": 6.5e-4}
    for k, e0 in enumerate(energies):
        label = "gaussian" if k == 0 else f"gaussian_{k + 1}"
        params |= {f"{label}.LineE": e0, f"{label}.Sigma": 0.0, f"{label}.norm": 1e-4 * (k + 1)}
    out = np.asarray(jax.jit(lambda: m.evaluate(params, lo, hi))())
    ref = np.zeros(lo.size)
    for k, e0 in enumerate(energies):
        s = 6.5e-4 * e0
        ref += 1e-4 * (k + 1) * (ndtr((hi - e0) / s) - ndtr((lo - e0) / s))
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9 * ref.max())
    with pytest.raises(ModelError, match="limited to 8192 bins"):
        parse_model("vbroad(powerlaw)").evaluate({}, lo, hi)
    # an intrinsic width adds in quadrature
    one = parse_model("vbroad(gaussian)")
    got = np.asarray(one.evaluate({"vbroad.Sigma": 1e-3, "gaussian.LineE": 6.0,
                                   "gaussian.Sigma": 0.008}, lo, hi))
    s = math.hypot(0.008, 6e-3)
    ref = ndtr((hi - 6) / s) - ndtr((lo - 6) / s)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * ref.max())


def test_numeric_smoothing_matches_analytic_line():
    edges = np.linspace(5.0, 7.0, 2001)
    lo, hi = edges[:-1], edges[1:]
    p = {"gsmooth.Sig_6keV": 0.05, "gaussian.LineE": 6.0, "gaussian.Sigma": 0.02}
    analytic = np.asarray(parse_model("gsmooth(gaussian)").evaluate(p, lo, hi))
    # "constant*gaussian" is materialised on the grid first, so it is smoothed numerically
    numeric = np.asarray(parse_model("gsmooth(constant*gaussian)").evaluate(p, lo, hi))
    assert numeric.sum() == pytest.approx(analytic.sum(), rel=1e-9)
    np.testing.assert_allclose(numeric, analytic, atol=2e-5 * analytic.max())


def test_repr_and_html():
    m = parse_model("tbabs*(powerlaw + gaussian:fe_k)")
    text = repr(m)
    assert text.splitlines()[0] == "SpectralModel: tbabs*(powerlaw + gaussian:fe_k)"
    assert "fe_k.LineE" in text and "keV" in text and "free" in text
    html = m._repr_html_()
    assert "fe_k.LineE" in html and "<" in html
    assert parse_model("powerlaw") == parse_model("powerlaw ")


def test_ulx4_response_grid(shared_data):
    from astropy.io import fits

    with fits.open(shared_data / "xmm_epic_pn" / "ngc7793_ulx4" / "PN.rmf") as hdul:
        lo = np.asarray(hdul["MATRIX"].data["ENERG_LO"], float)
        hi = np.asarray(hdul["MATRIX"].data["ENERG_HI"], float)
    assert lo.size == 2067
    m = parse_model("tbabs*(powerlaw + bbodyrad)")
    names = m.param_names
    f = jax.jit(jax.value_and_grad(
        lambda x: jnp.sum(jnp.log(m.evaluate(dict(zip(names, x)), lo, hi)[lo > 0.3]))))
    value, grad = f(jnp.array([0.1, 2.0, 1e-4, 0.8, 1e-2]))
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    # the grid's parameter-independent work (quadrature nodes, cross sections) is cached
    g = m.grid(lo, hi)
    assert g is m.grid(lo.copy(), hi.copy()) and g.contiguous and g.n_sub == 1
    assert ("absorption_terms", "tbabs") in g._cache


def test_prepare_builds_absorption_terms_ahead_of_the_trace():
    """``prepare`` builds what the first trace would (tbabs' absorption terms on the
    grid), so the trace finds them; the model's values are unchanged by it."""
    from jxspec_nb.model.components import multiplicative

    lo, hi = EDGES[:-1] * 1.01, EDGES[1:] * 1.01  # a grid no other test uses
    m = parse_model("tbabs*powerlaw")
    calls = []
    build = multiplicative.absorption_terms

    def counting(*a):
        calls.append(a[0])
        return build(*a)

    multiplicative.absorption_terms = counting
    try:
        m.prepare(lo, hi)
        assert calls == ["tbabs"]
        assert ("absorption_terms", "tbabs") in m.grid(lo, hi)._cache
        p = {"tbabs.nH": 0.7, "powerlaw.PhoIndex": 1.8, "powerlaw.norm": 1e-3}
        traced = jax.jit(lambda nh: m.evaluate({**p, "tbabs.nH": nh}, lo, hi))(0.7)
        assert calls == ["tbabs"]  # the trace used the prepared terms
    finally:
        multiplicative.absorption_terms = build
    fresh = parse_model("tbabs*powerlaw")
    np.testing.assert_allclose(np.asarray(traced), np.asarray(fresh.evaluate(p, lo, hi)),
                               rtol=1e-12)
