"""Priors, fixed values and ties: parsing, errors, and the sampling-space transforms."""

import math

import numpy as np
import numpyro.distributions as nd
import pytest

from jxspec_nb.errors import ModelError, PriorError
from jxspec_nb.inference import model_with_priors
from jxspec_nb.inference._distributions import PriorDef, prior_from_numpyro

ULX = """tbabs*(powerlaw + bbodyrad)   # the paper's Appendix A model
tbabs.nH ~ Uniform(0, 1)
powerlaw.PhoIndex ~ Uniform(0, 3)
powerlaw.norm ~ LogUniform(1e-5, 1e-1)
bbodyrad.kT ~ Uniform(0, 3)
bbodyrad.norm ~ LogUniform(1e-3, 1)
"""


def test_parse_cell_text():
    spec = model_with_priors(ULX)
    assert spec.free_names == ("tbabs.nH", "powerlaw.PhoIndex", "powerlaw.norm",
                               "bbodyrad.kT", "bbodyrad.norm")
    assert spec.prior_defs["powerlaw.norm"] == PriorDef("LogUniform", (1e-5, 0.1))
    d = spec.priors["bbodyrad.kT"]
    assert isinstance(d, nd.Uniform) and float(d.high) == 3.0
    # the canonical text re-parses to the same spec
    again = model_with_priors(spec.text)
    assert again.prior_defs == spec.prior_defs and again.text == spec.text
    assert "5 free parameters" in repr(spec)


def test_fixed_ties_and_comments():
    spec = model_with_priors("""
    # two blackbodies, the second twice as hot
    tbabs*(bbodyrad + bbodyrad)
    tbabs.nH = 0.05                 # fixed
    bbodyrad.kT ~ Uniform(0.1, 3)
    bbodyrad.norm ~ LogUniform(1e-3, 1)
    bbodyrad_2.kT = 2 * bbodyrad.kT + 0.1
    bbodyrad_2.norm = bbodyrad.norm / 4
    """)
    assert spec.fixed == {"tbabs.nH": 0.05}
    assert spec.free_names == ("bbodyrad.kT", "bbodyrad.norm")
    tie = spec.ties["bbodyrad_2.kT"]
    assert tie.depends == ("bbodyrad.kT",)
    assert float(tie.evaluate({"bbodyrad.kT": 1.5})) == pytest.approx(3.1)
    assert float(spec.ties["bbodyrad_2.norm"].evaluate({"bbodyrad.norm": 0.4})) == 0.1


def test_python_mapping_and_numpyro_distributions():
    from jxspec_nb.model import parse_model

    model = parse_model("tbabs*powerlaw")
    spec = model_with_priors(model, {
        "tbabs.nH": nd.Uniform(0.0, 1.0),
        "powerlaw.PhoIndex": nd.TruncatedNormal(2.0, 0.5, low=0.0, high=4.0),
        "powerlaw.norm": "LogUniform(1e-5, 1)",
    })
    assert spec.prior_defs["powerlaw.PhoIndex"] == PriorDef("TruncatedNormal", (2.0, 0.5),
                                                            0.0, 4.0)
    spec2 = model_with_priors(model, {"tbabs.nH": 0.1, "powerlaw.PhoIndex": "Normal(2, 0.3)",
                                      "powerlaw.norm": nd.LogUniform(1e-5, 1.0)})
    assert spec2.fixed == {"tbabs.nH": 0.1}
    assert spec2.prior_defs["powerlaw.norm"].kind == "LogUniform"


def test_per_observation_parameters():
    spec = model_with_priors("""tbabs*powerlaw
    tbabs.nH ~ Uniform(0, 1)
    powerlaw.PhoIndex ~ Uniform(0, 3)
    powerlaw.norm ~ LogUniform(1e-5, 1)
    powerlaw.norm[mos] ~ LogUniform(1e-5, 1)
    cross.factor[1] ~ Uniform(0.5, 1.5)
    gain.offset[mos] = 0.01
    """)
    assert spec.free_names[-2:] == ("powerlaw.norm[mos]", "cross.factor[1]")
    assert spec.per_observation() == {"mos": {"powerlaw.norm", "gain.offset"},
                                      "1": {"cross.factor"}}


@pytest.mark.parametrize("text, match, line, col", [
    ("powerlaw\npowerlaw.phoindex ~ Uniform(0, 3)", "unknown parameter 'powerlaw.phoindex'",
     2, 1),
    ("powerlaw\npowerlaw.PhoIndex ~ Unifrom(0, 3)", "unknown distribution 'Unifrom'", 2, 21),
    ("powerlaw\npowerlaw.PhoIndex ~ Uniform(3, 0)", "low < high", 2, 21),
    ("powerlaw\npowerlaw.PhoIndex ~ Uniform(0)", "missing high", 2, 21),
    ("powerlaw\npowerlaw.PhoIndex ~ Uniform(0, 3\n", "cannot parse", 2, None),
    ("powerlaw\npowerlaw.norm ~ Uniform(-1, 3)", "hard limits", 2, 17),
    ("powerlaw\npowerlaw.norm ~ Normal(1, 3)", "hard limits", 2, 17),
    ("powerlaw\npowerlaw.norm = -2", "outside the hard limits", 2, 17),
    ("powerlaw\npowerlaw.PhoIndex ~ Uniform(0, 3)\npowerlaw.PhoIndex = 2", "defined twice", 3,
     1),
    ("powerlaw\npowerlaw.PhoIndex  Uniform(0, 3)", "expected 'name ~", 2, 1),
    ("powerlaw\npowerlaw.PhoIndex = 2 * powerlaw.nrm", "unknown parameter 'powerlaw.nrm'", 2,
     25),
    ("powerlaw\npowerlaw.PhoIndex = __import__('os')", "only", 2, None),
    ("powerlaw\ncross.factor ~ Uniform(0.5, 2)", "per observation", 2, 1),
])
def test_prior_errors_name_line_and_column(text, match, line, col):
    with pytest.raises(PriorError, match=match) as info:
        model_with_priors(text)
    assert info.value.line == line
    if col is not None:
        assert info.value.col == col
    assert info.value.pointer() or line is None


def test_suggestions_and_missing_priors():
    with pytest.raises(PriorError) as info:
        model_with_priors("powerlaw\npowerlaw.phoindex ~ Uniform(0, 3)")
    assert info.value.suggestion == "powerlaw.PhoIndex"
    with pytest.raises(PriorError, match="free parameters without a prior: powerlaw.norm"):
        model_with_priors("powerlaw\npowerlaw.PhoIndex ~ Uniform(0, 3)")
    with pytest.raises(PriorError, match="circular ties"):
        model_with_priors("powerlaw\npowerlaw.PhoIndex = powerlaw.norm\n"
                          "powerlaw.norm = 2 * powerlaw.PhoIndex")
    with pytest.raises(PriorError, match="empty model text"):
        model_with_priors("# nothing\n\n")
    with pytest.raises(ModelError) as merr:
        model_with_priors("\n\ntbabs*powrlaw\n")
    assert merr.value.line == 3


PRIORS = [PriorDef("Uniform", (0.0, 3.0)), PriorDef("LogUniform", (1e-5, 0.1)),
          PriorDef("Normal", (2.0, 0.5)), PriorDef("LogNormal", (0.0, 1.0)),
          PriorDef("HalfNormal", (2.0,)), PriorDef("TruncatedNormal", (1.0, 2.0), 0.0, 4.0),
          PriorDef("TruncatedNormal", (1.0, 2.0), 0.5, None)]


@pytest.mark.parametrize("prior", PRIORS, ids=lambda p: p.text())
def test_transforms_match_numpyro(prior):
    import jax
    import jax.numpy as jnp

    d = prior.to_numpyro()
    assert prior_from_numpyro(d) == prior

    @jax.jit
    def evaluate(u, q):
        x, logp_u = jax.vmap(prior.forward)(u)
        jac = jax.vmap(jax.grad(lambda v: prior.forward(v)[0]))(u)
        return x, logp_u, d.log_prob(x) + jnp.log(jnp.abs(jac)), d.cdf(prior.from_unit(q))

    u = jnp.linspace(-3.0, 3.0, 7)
    q = jnp.array([0.1, 0.5, 0.9])
    x, logp_u, ref, cdf = evaluate(u, q)
    # inverse round trip
    assert np.allclose([prior.inverse(float(v)) for v in x], u, atol=1e-6)
    # density in u-space = numpyro log_prob(x) + log|dx/du| up to one constant
    # (LogUniform is sampled in log space: its u-density is flat in log x)
    diff = np.asarray(logp_u - ref)
    assert np.allclose(diff, diff[0], atol=1e-8)
    # inverse CDF agrees with numpyro's cdf
    assert np.allclose(np.asarray(cdf), q, atol=1e-6)
    # and the CDF (numpy) is its inverse: numpyro's cdf at the values of u
    assert np.allclose(prior.to_unit(np.asarray(x)), np.asarray(d.cdf(x)), atol=1e-6)
    lo, hi = prior.support
    s = prior.sample(np.random.default_rng(0), 500)
    assert np.all((s >= lo) & (s <= hi)) and math.isfinite(prior.median())


def test_normal_prior_far_inside_hard_limits_is_accepted():
    """A Normal >= 8 sd inside the limits is fine; one that reaches them is not."""
    from jxspec_nb.errors import PriorError
    from jxspec_nb.inference import model_with_priors

    ok = model_with_priors(
        "gaussian\ngaussian.LineE ~ Normal(6.7, 0.01)\n"
        "gaussian.Sigma ~ Uniform(0, 0.1)\ngaussian.norm ~ LogUniform(1e-6, 1)"
    )
    assert "gaussian.LineE" in ok.free_names
    with pytest.raises(PriorError, match=r"line 2.*hard limits \[0, inf\]"):
        model_with_priors(
            "gaussian\ngaussian.LineE ~ Normal(0.05, 0.01)\n"
            "gaussian.Sigma ~ Uniform(0, 0.1)\ngaussian.norm ~ LogUniform(1e-6, 1)"
        )
