"""Component accuracy: bin integrals and averages against independent references."""

import math

import jax
import numpy as np
import pytest
from scipy import integrate, special

from jxspec_nb.model import parse_model
from jxspec_nb.model.components._quadrature import Grid
from jxspec_nb.model.components.additive import _k0
from jxspec_nb.model.components.tables import cross_section

EDGES = np.geomspace(0.3, 12.0, 31)  # wide bins (12% of E): exercises sub-division
LO, HI = EDGES[:-1], EDGES[1:]


def evaluate(expr, params, lo=LO, hi=HI, **kw):
    return np.asarray(parse_model(expr, **kw).evaluate(params, lo, hi))


def quad_bins(f, lo=LO, hi=HI, points=None):
    return np.array([integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200,
                                    points=points)[0] for a, b in zip(lo, hi)])


def planck(e, kt):
    return e * e / np.expm1(e / kt)


@np.errstate(over="ignore")  # exp overflows to inf far in the Wien tail: 1/inf = 0
def diskbb_density(e, tin):
    inner = integrate.quad(lambda x: x ** (-11 / 3) / np.expm1(e / (x * tin)), 0.0, 1.0,
                           epsabs=0, epsrel=1e-12, limit=200)[0]
    return 1.0344e-3 * 8 / 3 * e * e * inner


ADDITIVE = [
    ("powerlaw", {"powerlaw.PhoIndex": 1.7, "powerlaw.norm": 2.0},
     lambda e: 2.0 * e**-1.7),
    ("zpowerlw", {"zpowerlw.PhoIndex": 2.2, "zpowerlw.Redshift": 0.3, "zpowerlw.norm": 1.0},
     lambda e: (e * 1.3) ** -2.2),
    ("bknpower", {"bknpower.PhoIndx1": 1.2, "bknpower.BreakE": 3.3, "bknpower.PhoIndx2": 2.4},
     lambda e: e**-1.2 if e <= 3.3 else 3.3 ** (2.4 - 1.2) * e**-2.4),
    ("cutoffpl", {"cutoffpl.PhoIndex": 1.4, "cutoffpl.HighECut": 5.0},
     lambda e: e**-1.4 * np.exp(-e / 5.0)),
    ("bbody", {"bbody.kT": 1.5, "bbody.norm": 3.0},
     lambda e: 3.0 * 8.0525 * planck(e, 1.5) / 1.5**4),
    ("bbodyrad", {"bbodyrad.kT": 0.8, "bbodyrad.norm": 50.0},
     lambda e: 50.0 * 1.0344e-3 * planck(e, 0.8)),
    ("zbbody", {"zbbody.kT": 2.0, "zbbody.Redshift": 0.5},
     lambda e: 8.0525 * planck(e * 1.5, 2.0) / (1.5 * 2.0**4)),
    ("diskbb", {"diskbb.Tin": 1.2, "diskbb.norm": 10.0},
     lambda e: 10.0 * diskbb_density(e, 1.2)),
    ("bremss", {"bremss.kT": 4.0},
     lambda e: math.sqrt(3) / math.pi * np.exp(e / 8.0) * special.k0(e / 8.0)
     * np.exp(-e / 4.0) / (e * 2.0)),
    ("logpar", {"logpar.alpha": 1.8, "logpar.beta": 0.3, "logpar.pivotE": 2.0},
     lambda e: (e / 2.0) ** (-1.8 - 0.3 * np.log10(e / 2.0))),
    ("grbm", {"grbm.alpha": -0.8, "grbm.beta": -2.3, "grbm.tem": 2.0},
     lambda e: (e / 100) ** -0.8 * np.exp(-e / 2.0) if e < 3.0
     else (3.0 / 100) ** 1.5 * np.exp(-1.5) * (e / 100) ** -2.3),
    ("lorentz", {"lorentz.LineE": 6.4, "lorentz.Width": 0.3, "lorentz.norm": 2.0},
     lambda e: 2.0 * 0.3 / (2 * math.pi) / ((e - 6.4) ** 2 + 0.15**2)
     / (0.5 + math.atan(2 * 6.4 / 0.3) / math.pi)),
    ("gaussian", {"gaussian.LineE": 2.0, "gaussian.Sigma": 0.7, "gaussian.norm": 3.0},
     lambda e: 3.0 * np.exp(-0.5 * ((e - 2.0) / 0.7) ** 2) / (math.sqrt(2 * math.pi) * 0.7)
     / (1 - special.ndtr(-2.0 / 0.7))),
    ("zgauss", {"zgauss.LineE": 6.7, "zgauss.Sigma": 0.4, "zgauss.Redshift": 0.2},
     # observed: centre 6.7/1.2, width 0.4/1.2, total 1/(1+z) photons (time dilation)
     lambda e: np.exp(-0.5 * ((e * 1.2 - 6.7) / 0.4) ** 2) / (math.sqrt(2 * math.pi) * 0.4)),
    ("constadd", {"constadd.norm": 0.25}, lambda e: 0.25),
]


@pytest.mark.parametrize("expr,params,density", ADDITIVE, ids=[a[0] for a in ADDITIVE])
def test_additive_bin_integrals(expr, params, density):
    points = [3.3] if expr == "bknpower" else [3.0] if expr == "grbm" else None
    lo, hi = (LO[::5], HI[::5]) if expr == "diskbb" else (LO, HI)  # nested quad is slow
    ref = quad_bins(density, lo, hi, points=points)
    got = evaluate(expr, params, lo, hi)
    if expr == "grbm":  # the Band function has a kink at the break: refine those bins
        got = evaluate(expr, params, max_rel_width=0.002)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("gamma", [1.0, 1.0 + 1e-7, 1.0 - 3e-5, 2.0, -0.5])
def test_powerlaw_exact_near_index_one(gamma):
    got = evaluate("powerlaw", {"powerlaw.PhoIndex": gamma})
    a = 1.0 - gamma
    d = np.log(HI / LO)
    ref = d if a == 0 else LO**a * np.expm1(a * d) / a
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_narrow_line_in_wide_bins_and_delta_line():
    lo, hi = np.array([1.0, 5.0, 7.0]), np.array([5.0, 7.0, 9.0])
    got = evaluate("gaussian", {"gaussian.LineE": 6.4, "gaussian.Sigma": 1e-3}, lo, hi)
    np.testing.assert_allclose(got, [0.0, 1.0, 0.0], atol=1e-15)
    got = evaluate("gaussian", {"gaussian.LineE": 6.4, "gaussian.Sigma": 0.0}, lo, hi)
    np.testing.assert_array_equal(got, [0.0, 1.0, 0.0])
    # the line straddling a bin edge splits by its CDF
    got = evaluate("gaussian", {"gaussian.LineE": 7.0, "gaussian.Sigma": 0.01}, lo, hi)
    np.testing.assert_allclose(got, [0.0, 0.5, 0.5], rtol=1e-12)


def test_wide_line_across_narrow_bins():
    edges = np.linspace(4.0, 8.0, 8001)  # 0.5 eV bins under a 0.3 keV line
    params = {"gaussian.LineE": 6.0, "gaussian.Sigma": 0.3, "gaussian.norm": 1.0}
    got = evaluate("gaussian", params, edges[:-1], edges[1:])
    ref = special.ndtr((edges[1:] - 6.0) / 0.3) - special.ndtr((edges[:-1] - 6.0) / 0.3)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-15)
    assert abs(got.sum() - 1.0) < 1e-9


def test_k0_approximation():
    x = np.geomspace(1e-4, 50.0, 200)
    np.testing.assert_allclose(np.asarray(jax.jit(_k0)(x)), special.k0(x), rtol=3e-7)


def test_absorption_equals_tables_at_table_energies(shared_data):
    from astropy.io import fits

    for name, fname in [("tbabs", "xsect_tbabs_wilm.fits"), ("phabs", "xsect_phabs_angr.fits"),
                        ("wabs", "xsect_wabs_angr.fits")]:
        with fits.open(shared_data / "absorption" / fname) as hdul:
            energy = np.asarray(hdul[1].data["ENERGY"], float)[::97]
            sigma = np.asarray(hdul[1].data["SIGMA"], float)[::97]
        np.testing.assert_allclose(cross_section(name, energy), sigma, rtol=1e-12)
        # bin averages over tiny bins centred on table energies equal exp(-nH SIGMA)
        lo, hi = energy * (1 - 1e-9), energy * (1 + 1e-9)
        got = evaluate(f"{name}*constadd", {f"{name}.nH": 0.7}, lo, hi) / (hi - lo)
        np.testing.assert_allclose(got, np.exp(-0.7 * sigma), rtol=1e-6)
    # spot values of shared/data/README.md
    np.testing.assert_allclose(cross_section("tbabs", np.array([0.5, 1.0, 6.0])),
                               [6.296, 1.738, 0.01415], rtol=2e-3)


def test_absorption_smooth_between_table_points_and_extrapolated():
    from jxspec_nb.model.components.tables import absorption_table

    log_e, log_s = absorption_table("tbabs")
    # log-log interpolation: at the geometric mean of two table energies, the
    # cross section is the geometric mean of theirs (no overshoot between points)
    mid = np.exp(0.5 * (log_e[1:] + log_e[:-1]))[::37]
    expected = np.exp(0.5 * (log_s[1:] + log_s[:-1]))[::37]
    np.testing.assert_allclose(cross_section("tbabs", mid), expected, rtol=1e-12)
    below = cross_section("tbabs", np.array([0.05, 0.08, 0.1]))
    above = cross_section("tbabs", np.array([20.0, 30.0, 50.0]))
    assert np.all(np.diff(below) < 0) and np.all(np.diff(above) < 0)
    assert np.all(np.isfinite(below)) and np.all(above > 0)


@pytest.mark.parametrize("nh", [0.1, 1.0, 3.0])
def test_absorption_exact_in_bins_holding_the_oxygen_resonance_and_edge(nh):
    """EPIC-pn-like 1-3 eV bins around O I 1s-2p (0.527 keV) and the O K edge: the
    transmission equals a 262144-point average of the tabulated exp(-nH SIGMA)."""
    from jxspec_nb.model.components.multiplicative import absorption_terms

    edges = np.concatenate([np.arange(0.480, 0.520, 0.003), np.arange(0.520, 0.550, 0.001)])
    lo, hi = edges[:-1], edges[1:]
    rough = np.flatnonzero(absorption_terms("tbabs", lo, hi).weight == 0)  # fell back
    assert 0 < rough.size < lo.size  # only some bins need it ...
    assert np.any((lo[rough] <= 0.5275) & (hi[rough] > 0.5275))  # ... O I
    got = evaluate("tbabs*constadd", {"tbabs.nH": nh, "constadd.norm": 1.0}, lo, hi) / (hi - lo)
    t = (np.arange(262144) + 0.5) / 262144
    ref = np.array([np.mean(np.exp(-nh * cross_section("tbabs", a + (b - a) * t)))
                    for a, b in zip(lo, hi)])
    seen = ref > 1e-20  # transmissions that can show up in a spectrum
    assert seen.sum() >= 20
    np.testing.assert_allclose(got[seen], ref[seen], rtol={0.1: 1e-7, 1.0: 1e-6, 3.0: 1e-5}[nh])


@pytest.mark.parametrize("model", ["tbabs", "phabs"])
def test_absorption_series_on_a_ccd_grid(model):
    """The one-exponential-per-bin cumulant series (with its node and piece fallbacks)
    against 16384-point bin averages on a 5 eV EPIC-pn-like grid, at columns between
    and beyond the ones it was checked at when built."""
    from jxspec_nb.model.components.multiplicative import absorption_terms

    edges = np.arange(0.3, 10.0, 0.005)
    lo, hi = edges[:-1], edges[1:]
    terms = absorption_terms(model, lo, hi)
    # fewer exponentials than the three-node rule's three per bin
    assert terms.extra is not None and terms.extra[0].size < lo.size
    assert np.mean(terms.weight == 0) < 0.1
    rng = np.random.default_rng(3)
    bins = np.union1d(rng.choice(lo.size, 120, replace=False),
                      np.unique(terms.extra[0])[::3])
    t = (np.arange(16384) + 0.5) / 16384
    sig = cross_section(model, lo[bins, None] + (hi - lo)[bins, None] * t[None, :])
    for nh in (0.05, 0.5, 2.0, 7.0, 20.0, 60.0):
        got = evaluate(f"{model}*constadd", {f"{model}.nH": nh, "constadd.norm": 1.0},
                       lo, hi)[bins] / (hi - lo)[bins]
        ref = np.mean(np.exp(-nh * sig), axis=1)
        seen = ref > 1e-20  # transmissions that can show up in a spectrum
        np.testing.assert_allclose(got[seen], ref[seen], rtol=3e-7, err_msg=f"nH={nh}")


def test_absorption_series_bounded_and_differentiable_at_any_column():
    """Columns far beyond the checked ones stay within the exact bounds of a bin
    average, exp(-nH max SIGMA) <= T <= exp(-nH min SIGMA), and the hand-written
    derivative matches finite differences, inside and outside the clipped regime."""
    edges = np.arange(0.3, 10.0, 0.005)
    lo, hi = edges[:-1], edges[1:]
    model = parse_model("tbabs*constadd")
    t = np.concatenate([[0.0], (np.arange(1024) + 0.5) / 1024, [1.0]])
    sig = cross_section("tbabs", lo[:, None] + (hi - lo)[:, None] * t[None, :])

    def trans(nh):
        return model.evaluate({"tbabs.nH": nh, "constadd.norm": 1.0}, lo, hi) / (hi - lo)

    for nh in (300.0, 3e3, 3e4):
        got = np.asarray(trans(nh))
        assert np.all(np.isfinite(got)) and np.all(got >= 0)
        upper = np.exp(-nh * sig.min(axis=1))
        assert np.all(got <= upper * (1 + 1e-12) + 1e-300)
    w = np.random.default_rng(0).uniform(0.5, 1.5, lo.size)
    f = jax.jit(lambda nh: jax.numpy.sum(w * trans(nh)))
    g = jax.jit(jax.grad(lambda nh: jax.numpy.sum(w * trans(nh))))
    for nh in (0.01, 0.3, 3.0, 40.0, 500.0):
        h = 1e-6 * nh
        fd = (float(f(nh + h)) - float(f(nh - h))) / (2 * h)
        assert float(g(nh)) == pytest.approx(fd, rel=1e-5, abs=1e-300)


def test_planck_expm1_value_and_derivative():
    """The Planck function's e^x - 1 (exp above 0.01, Taylor below) matches expm1,
    and its derivative is e^x on both sides of the switch."""
    from jxspec_nb.model.components.additive import _expm1

    x = np.concatenate([np.geomspace(1e-12, 0.0099999, 500), [0.01],
                        np.geomspace(0.0100001, 700.0, 500)])
    np.testing.assert_allclose(np.asarray(jax.jit(_expm1)(x)), np.expm1(x), rtol=3e-14)
    d = jax.jit(jax.vmap(jax.grad(_expm1)))(x)
    np.testing.assert_allclose(np.asarray(d), np.exp(x), rtol=1e-13)


def bin_average(f, lo=LO, hi=HI, points=None):
    return quad_bins(f, lo, hi, points) / (hi - lo)


MULTIPLICATIVE = [
    ("constant", {"constant.factor": 0.37}, lambda e: 0.37),
    ("expabs", {"expabs.LowECut": 1.5}, lambda e: np.exp(-1.5 / e)),
    ("highecut", {"highecut.cutoffE": 4.0, "highecut.foldE": 3.0},
     lambda e: 1.0 if e < 4.0 else np.exp((4.0 - e) / 3.0)),
    ("gabs", {"gabs.LineE": 2.0, "gabs.Sigma": 0.8, "gabs.Strength": 0.5},
     lambda e: np.exp(-0.5 / (math.sqrt(2 * math.pi) * 0.8) * np.exp(-0.5 * ((e - 2) / 0.8) ** 2))),
    ("zedge", {"zedge.edgeE": 7.1, "zedge.MaxTau": 0.6, "zedge.Redshift": 0.1},
     lambda e: 1.0 if e * 1.1 < 7.1 else np.exp(-0.6 * (e * 1.1 / 7.1) ** -3)),
]


@pytest.mark.parametrize("expr,params,factor", MULTIPLICATIVE, ids=[m[0] for m in MULTIPLICATIVE])
def test_multiplicative_bin_averages(expr, params, factor):
    edges = np.geomspace(0.3, 12.0, 301)
    lo, hi = edges[:-1], edges[1:]
    got = evaluate(f"{expr}*constadd", params, lo, hi) / (hi - lo)
    ref = bin_average(factor, lo, hi)
    # discontinuous factors (cutoff, edge): the bin holding the jump is split there
    jump = {"highecut": 4.0, "zedge": 7.1 / 1.1}.get(expr)
    points = None if jump is None else [jump]
    ref = bin_average(factor, lo, hi, points=points) if jump is not None else ref
    if jump is not None:
        assert np.any((lo < jump) & (hi > jump))
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_cabs_is_thomson_at_low_energy_and_klein_nishina_at_high():
    lo, hi = np.array([1.0, 511.0]), np.array([1.001, 511.5])
    got = evaluate("cabs*constadd", {"cabs.nH": 10.0}, lo, hi) / (hi - lo)
    x = 1.0
    kn = 0.75 * ((1 + x) / x**3 * (2 * x * (1 + x) / (1 + 2 * x) - np.log(1 + 2 * x))
                 + np.log(1 + 2 * x) / (2 * x) - (1 + 3 * x) / (1 + 2 * x) ** 2)
    sigma_t = 6.6524587e-25
    np.testing.assert_allclose(got[0], np.exp(-10e22 * sigma_t * (1 - 2 / 511)), rtol=1e-5)
    np.testing.assert_allclose(got[1], np.exp(-10e22 * sigma_t * kn), rtol=1e-4)


def test_grid_quadrature_subdivides_wide_bins():
    g = Grid(np.array([1.0, 10.0]), np.array([2.0, 30.0]))
    assert g.n_sub >= 50
    got = np.asarray(g.integrate(lambda e: np.exp(-e / 3.0) * e))
    ref = quad_bins(lambda e: np.exp(-e / 3.0) * e, g.e_lo, g.e_hi)
    np.testing.assert_allclose(got, ref, rtol=1e-7)


def test_grid_tables_are_built_once_when_threads_trace_together():
    """Programs are traced in worker threads beside the main thread; each asks the
    grid for the same parameter-independent tables, which must be built once."""
    import threading
    import time

    grid = Grid(np.linspace(0.5, 9.0, 50), np.linspace(0.6, 9.1, 50))
    builds = []

    def make():
        builds.append(threading.current_thread().name)
        time.sleep(0.2)  # a slow table: the other threads arrive while it is built
        _ = grid.mid  # a build may ask the grid for another table (reentrant)
        return np.arange(3)

    out = []
    threads = [threading.Thread(target=lambda: out.append(grid.cached("slow", make)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(out) == 3
    assert all(o is out[0] for o in out)


def test_diskbb_table_matches_the_bose_integral_and_its_derivative():
    """diskbb interpolates ln(a^(-2/3) I(a)) from a table; against I(a) computed
    directly (series / Gauss-Laguerre, ~1e-13) from a = 1e-8 (Tin far above any
    data's energies) to the Wien tail, value and d/da."""
    from jxspec_nb.model.components.additive import _bose_integral, _diskbb_shape

    a = np.exp(np.linspace(np.log(1e-8), np.log(600.0), 20011))  # off the table's nodes
    direct = a ** (-2 / 3) * _bose_integral(a, np)
    got = np.asarray(_diskbb_shape(jax.numpy.asarray(a)))
    np.testing.assert_allclose(got, direct, rtol=2e-9, atol=0)  # seen: 9e-10
    # derivative: d/da [a^(-2/3) I(a)] = -2/3 a^(-5/3) I(a) - a / (e^a - 1)
    sel = a < 300.0
    with np.errstate(over="ignore"):
        exact = -2 / 3 * a ** (-5 / 3) * _bose_integral(a, np) - a / np.expm1(a)
    grad = np.asarray(jax.vmap(jax.grad(_diskbb_shape))(jax.numpy.asarray(a[sel])))
    np.testing.assert_allclose(grad, exact[sel], rtol=1e-8, atol=0)  # seen: 1.4e-9


@pytest.mark.parametrize("model", ["ztbabs", "zphabs", "zwabs"])
def test_redshifted_absorber_fixed_and_free_redshift(model):
    """A fixed redshift (a constant in the fit) takes the tables of the rest-frame
    edges; a free (traced) one the running integral over the table's energies. Both
    against 16384-point bin averages of exp(-nH SIGMA(E (1 + z))) on 5 eV bins across
    the redshifted N and O K edges, and the free one's derivative in z against finite
    differences."""
    from jxspec_nb.model.registry import _REGISTRY

    edges = np.arange(0.35, 0.60, 0.005)
    lo, hi = edges[:-1], edges[1:]
    z = 0.07
    t = (np.arange(16384) + 0.5) / 16384
    sig = cross_section(model[1:], (lo[:, None] + (hi - lo)[:, None] * t[None, :]) * (1 + z))
    comp = _REGISTRY[model]
    for nh, rtol in ((0.1, 1e-8), (0.8, 1e-7), (5.0, 2e-5)):  # seen: 3e-9, 3e-8, 4e-6
        ref = np.mean(np.exp(-nh * sig), axis=1)
        seen = ref > 1e-12  # transmissions that can show up in a spectrum
        fixed = np.asarray(comp.evaluate(Grid(lo, hi), {"nH": nh, "Redshift": z}))
        np.testing.assert_allclose(fixed[seen], ref[seen], rtol=max(rtol, 1e-7))
        free = np.asarray(jax.jit(
            lambda zz, n=nh: comp.evaluate(Grid(lo, hi), {"nH": n, "Redshift": zz}))(z))
        np.testing.assert_allclose(free[seen], ref[seen], rtol=rtol)
    w = np.random.default_rng(1).uniform(0.5, 1.5, lo.size)

    def total(zz):
        return jax.numpy.sum(w * comp.evaluate(Grid(lo, hi), {"nH": 0.8, "Redshift": zz}))

    f, g = jax.jit(total), jax.jit(jax.grad(total))
    h = 1e-5
    fd = (float(f(z + h)) - float(f(z - h))) / (2 * h)
    assert float(g(z)) == pytest.approx(fd, rel=1e-4)


@pytest.mark.parametrize("expr,params,jump", [
    ("zedge", {"zedge.edgeE": 7.1, "zedge.MaxTau": 5.0, "zedge.Redshift": 0.1}, "zedge.edgeE"),
    ("highecut", {"highecut.cutoffE": 4.0, "highecut.foldE": 0.5}, "highecut.cutoffE"),
])
def test_edge_factors_split_their_bin_at_the_jump(expr, params, jump):
    """zedge and highecut on wide (12 %) bins: the bin holding the jump is split there,
    so the average is exact (to the quadrature of the smooth part), and the derivative
    in the jump energy is that of the moving split (finite differences)."""
    e_jump = params[jump] / (1 + params.get("zedge.Redshift", 0.0))
    if expr == "zedge":
        def factor(e):
            return 1.0 if e < e_jump else np.exp(-5.0 * (e / e_jump) ** -3)
    else:
        def factor(e):
            return 1.0 if e < 4.0 else np.exp((4.0 - e) / 0.5)
    got = evaluate(f"{expr}*constadd", params) / (HI - LO)
    ref = bin_average(factor, points=[e_jump])
    np.testing.assert_allclose(got, ref, rtol=3e-7)  # seen: 7e-8 (zedge), 1e-15 (highecut)
    model = parse_model(f"{expr}*constadd")
    k = int(np.flatnonzero((LO < e_jump) & (HI > e_jump))[0])

    def in_bin(v):
        return model.evaluate({**params, jump: v}, LO, HI)[k]

    v, h = params[jump], 1e-6
    fd = (float(in_bin(v + h)) - float(in_bin(v - h))) / (2 * h)
    assert fd != 0.0
    assert float(jax.grad(in_bin)(v)) == pytest.approx(fd, rel=1e-5)


def test_weighted_gauss_rule_matches_moments_and_compresses_rough_bins():
    """The Gauss rule of a weighted discrete measure integrates x^0 ... x^(2q-1) exactly
    (positive weights, nodes inside the support); a rough bin at the O K edge or the Fe
    L edges is summed from fewer exponentials than its pieces' nodes, to 1e-9, and one
    holding the whole O I resonance (no short rule holds it at 1e-9 out to nH = 100)
    keeps its nodes."""
    from jxspec_nb.model.components import multiplicative as m
    from jxspec_nb.model.components.tables import absorption_table

    rng = np.random.default_rng(5)
    x, w = rng.uniform(0.3, 2.0, 200), rng.uniform(0.1, 1.0, 200)
    nodes, wq = m._weighted_gauss_rule(x, w, 6)
    assert np.all(wq > 0) and x.min() < nodes.min() and nodes.max() < x.max()
    for k in range(12):
        np.testing.assert_allclose(np.sum(wq * nodes**k), np.sum(w * x**k), rtol=1e-10)

    def sigma_of(e):
        return cross_section("tbabs", e)

    table_e = np.exp(absorption_table("tbabs")[0])
    for lo in (0.5255, 0.541, 0.706):  # O I 1s-2p, O K edge, Fe L
        pieces = m._rough_pieces(sigma_of, lo, lo + 0.003, table_e)
        s = np.concatenate([p[0] for p in pieces])
        w = np.concatenate([p[1] for p in pieces])
        cs, cw = m._compressed(pieces)
        assert cs.size == s.size if lo == 0.5255 else cs.size < s.size / 2
        for nh in (0.05, 0.4, 2.0, 7.0, 20.0, 100.0):
            full = np.sum(w * np.exp(-nh * s))
            if full > 1e-30:  # the transmissions the rule is held to
                np.testing.assert_allclose(np.sum(cw * np.exp(-nh * cs)), full, rtol=1e-9)


def test_absorption_tables_from_pieces_match_fine_sampling():
    """The per-bin tables (cumulant series, bounds, 3-node rules) and the check's
    reference averages come from Gauss-Legendre nodes on the pieces of each bin between
    the table's energies: they agree with 262144-point samplings of the same bins, edge
    and resonance bins included, and the bounds are the exact range of SIGMA."""
    from jxspec_nb.model.components import multiplicative as m
    from jxspec_nb.model.components.tables import absorption_table

    edges = np.concatenate([np.arange(0.516, 0.549, 0.003), np.arange(0.700, 0.725, 0.005),
                            np.arange(2.0, 2.1, 0.01)])
    keep = (np.diff(edges) > 0.002) & (np.diff(edges) < 0.02)  # 3-10 eV bins
    lo, hi = edges[:-1][keep], edges[1:][keep]

    def sigma_of(e):
        return cross_section("tbabs", e)

    table_e = np.exp(absorption_table("tbabs")[0])
    nodes, weights, coef, bounds = m._moment_rules(sigma_of, lo, hi, table_e)
    exact = m._exact_averages(sigma_of, lo, hi, np.arange(lo.size), table_e)
    t = (np.arange(262144) + 0.5) / 262144
    for i in range(lo.size):
        s = sigma_of(lo[i] + (hi[i] - lo[i]) * t)
        inner = table_e[(table_e > lo[i]) & (table_e < hi[i])]
        ends = sigma_of(np.concatenate([[lo[i], hi[i]], inner]))
        assert bounds[0, i] == ends.min() and bounds[1, i] == ends.max()
        assert bounds[0, i] <= s.min() and s.max() <= bounds[1, i]
        k1, var = s.mean(), s.var()
        assert -coef[0, i] == pytest.approx(k1, rel=1e-8, abs=0)
        assert 2.0 * coef[1, i] == pytest.approx(var, rel=1e-6, abs=1e-12 * k1**2)
        for k in range(6):  # the 3-node rule holds the moments 0 ... 5
            assert np.sum(weights[:, i] * nodes[:, i] ** k) == pytest.approx(
                np.mean(s**k), rel=1e-7, abs=0)
        for j, nh in enumerate(m._CHECK_NH):
            ref = np.mean(np.exp(-nh * s))
            if ref > 1e-30:
                assert exact[j, i] == pytest.approx(ref, rel=1e-7, abs=0), (lo[i], nh)
