r"""LaTeX formulas of the built-in components, keyed by registry name.

The model registry (``jxspec_nb.model.registry.ComponentSpec``) carries names,
parameters, units and limits but no formula; a formula given there as
``extra["formula"]`` takes precedence over the one here. ``tests/test_docs.py``
fails when a built-in component has no formula in either place, so a new
component cannot appear undocumented. Formulas transcribe the definitions in
the docstrings of ``jxspec_nb/model/components/*.py`` (after the XSPEC manual);
$K$ is ``norm``, $E$ the energy in keV.
"""

from __future__ import annotations

FORMULAS: dict[str, str] = {
    # ----------------------------------------------------------- additive
    "powerlaw": r"A(E) = K\,E^{-\mathrm{PhoIndex}}",
    "zpowerlw": r"A(E) = K\,\left[E(1+z)\right]^{-\mathrm{PhoIndex}}",
    "bknpower": (
        r"A(E) = \begin{cases} K\,E^{-\Gamma_1} & E \le E_b \\"
        r" K\,E_b^{\Gamma_2-\Gamma_1}\,E^{-\Gamma_2} & E > E_b \end{cases}"
        r"\qquad \Gamma_1 = \mathrm{PhoIndx1},\ \Gamma_2 = \mathrm{PhoIndx2},"
        r"\ E_b = \mathrm{BreakE}"
    ),
    "cutoffpl": r"A(E) = K\,E^{-\mathrm{PhoIndex}}\,\exp\!\left(-E/\mathrm{HighECut}\right)",
    "bbody": (
        r"A(E) = K\,\frac{8.0525\,E^{2}}{(kT)^{4}\left(e^{E/kT}-1\right)}"
        r"\qquad K = L_{39}/D_{10}^{2}"
    ),
    "bbodyrad": (
        r"A(E) = K\,\frac{1.0344\times10^{-3}\,E^{2}}{e^{E/kT}-1}"
        r"\qquad K = R_{\mathrm{km}}^{2}/D_{10}^{2}"
    ),
    "zbbody": (
        r"A(E) = K\,\frac{8.0525\,\left[E(1+z)\right]^{2}}"
        r"{(1+z)\,(kT)^{4}\left(e^{E(1+z)/kT}-1\right)}"
    ),
    "diskbb": (
        r"A(E) = K\,\frac{8}{3}\,1.0344\times10^{-3}\int_0^1 x^{-11/3}\,"
        r"\frac{E^{2}}{e^{E/(x\,T_{\mathrm{in}})}-1}\,\mathrm{d}x"
        r"\qquad K = \left(R_{\mathrm{in,km}}/D_{10}\right)^{2}\cos i"
    ),
    "bremss": (
        r"A(E) = K\,\frac{g(E, kT)}{E\sqrt{kT}}\,e^{-E/kT},\qquad "
        r"g = \frac{\sqrt{3}}{\pi}\,e^{u/2}K_0(u/2),\ u = E/kT"
    ),
    "gaussian": (
        r"A(E) = \frac{K}{\sqrt{2\pi}\,\sigma}\,"
        r"\exp\!\left(-\frac{(E-E_L)^{2}}{2\sigma^{2}}\right)"
        r"\qquad E_L = \mathrm{LineE},\ \sigma = \mathrm{Sigma}"
    ),
    "zgauss": (
        r"A(E) = \frac{K}{1+z}\,\frac{1}{\sqrt{2\pi}\,\sigma'}\,"
        r"\exp\!\left(-\frac{(E-E_L')^{2}}{2\sigma'^{2}}\right),\qquad "
        r"E_L' = \frac{\mathrm{LineE}}{1+z},\ \sigma' = \frac{\mathrm{Sigma}}{1+z}"
    ),
    "lorentz": (
        r"A(E) = K\,\frac{W/(2\pi)}{(E-E_L)^{2}+(W/2)^{2}}"
        r"\qquad W = \mathrm{Width}\ \text{(FWHM)}"
    ),
    "logpar": (
        r"A(E) = K\,\left(E/E_p\right)^{-\alpha-\beta\log_{10}(E/E_p)}"
        r"\qquad E_p = \mathrm{pivotE}"
    ),
    "grbm": (
        r"A(E) = \begin{cases} K\,(E/100)^{\alpha}\,e^{-E/E_c} & E < (\alpha-\beta)E_c \\"
        r" K\,\left[\frac{(\alpha-\beta)E_c}{100}\right]^{\alpha-\beta}e^{\beta-\alpha}"
        r"\,(E/100)^{\beta} & E \ge (\alpha-\beta)E_c \end{cases}"
        r"\qquad E_c = \mathrm{tem}"
    ),
    "constadd": r"A(E) = K",
    # ------------------------------------------------------ multiplicative
    "tbabs": r"M(E) = \exp\!\left(-n_H\,\sigma_{\mathrm{tbabs}}(E)\right)",
    "ztbabs": r"M(E) = \exp\!\left(-n_H\,\sigma_{\mathrm{tbabs}}\!\left(E(1+z)\right)\right)",
    "phabs": r"M(E) = \exp\!\left(-n_H\,\sigma_{\mathrm{phabs}}(E)\right)",
    "zphabs": r"M(E) = \exp\!\left(-n_H\,\sigma_{\mathrm{phabs}}\!\left(E(1+z)\right)\right)",
    "wabs": r"M(E) = \exp\!\left(-n_H\,\sigma_{\mathrm{wabs}}(E)\right)",
    "zwabs": r"M(E) = \exp\!\left(-n_H\,\sigma_{\mathrm{wabs}}\!\left(E(1+z)\right)\right)",
    "constant": r"M(E) = \mathrm{factor}",
    "expabs": r"M(E) = \exp\!\left(-\mathrm{LowECut}/E\right)",
    "highecut": (
        r"M(E) = \begin{cases} 1 & E \le E_c \\ \exp\!\left((E_c-E)/E_f\right) & E > E_c"
        r"\end{cases}\qquad E_c = \mathrm{cutoffE},\ E_f = \mathrm{foldE}"
    ),
    "gabs": (
        r"M(E) = \exp\!\left(-\frac{S}{\sqrt{2\pi}\,\sigma}"
        r"\exp\!\left(-\frac{(E-E_L)^{2}}{2\sigma^{2}}\right)\right)"
        r"\qquad S = \mathrm{Strength}"
    ),
    "zedge": (
        r"M(E) = \begin{cases} 1 & E(1+z) < E_e \\"
        r" \exp\!\left(-\tau\,\left[E(1+z)/E_e\right]^{-3}\right) & E(1+z) \ge E_e"
        r"\end{cases}\qquad E_e = \mathrm{edgeE},\ \tau = \mathrm{MaxTau}"
    ),
    "cabs": (
        r"M(E) = \exp\!\left(-n_H\,10^{22}\,\sigma_{\mathrm{KN}}(E)\right)"
        r"\qquad \sigma_{\mathrm{KN}}:\ \text{Klein–Nishina total cross section}"
    ),
    # --------------------------------------------------------- convolution
    "zashift": (
        r"F_{\mathrm{obs}}(E) = F\!\left(E(1+z)\right)\,(1+z)"
        r"\qquad E_{\mathrm{obs}} = E/(1+z),\ \text{photons conserved}"
    ),
    "vashift": (
        r"E_{\mathrm{obs}} = E\,(1 - v/c)\qquad v = \mathrm{Velocity}"
        r"\ \text{(km/s, positive = redshift), photons conserved}"
    ),
    "gsmooth": (
        r"F_{\mathrm{obs}}(E) = \int F(E')\,\mathcal{N}\!\left(E;\,E',\,\sigma(E')\right)"
        r"\mathrm{d}E',\qquad \sigma(E) = \mathrm{Sig\_6keV}\,(E/6\,\mathrm{keV})^{\mathrm{Index}}"
    ),
    "vbroad": (
        r"F_{\mathrm{obs}}(E) = \int F(E')\,\mathcal{N}\!\left(E;\,E',\,\Sigma E'\right)"
        r"\mathrm{d}E',\qquad \Sigma = \sigma_v/c"
    ),
    "cflux": (
        r"F_{\mathrm{obs}}(E) = F(E)\,\frac{10^{\mathrm{lg10Flux}}}"
        r"{\int_{E_{\min}}^{E_{\max}} E\,F(E)\,\mathrm{d}E}"
        r"\qquad \text{(energy flux in erg/cm}^2\text{/s)}"
    ),
}
