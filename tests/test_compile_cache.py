"""One compiled log-density per problem: a second fit does not recompile."""

import numpy as np

from jxspec_nb.inference import fit, model_with_priors, trace_counts
from jxspec_nb.inference._synthetic import ToyModel, toy_observation
from jxspec_nb.inference.compile import get_problem

PRIORS = {"toyabs.nH": "Uniform(0, 2)", "powerlaw.PhoIndex": "Uniform(0, 4)",
          "powerlaw.norm": "LogUniform(1e-5, 1)"}
TRUTH = {"toyabs.nH": 0.3, "powerlaw.PhoIndex": 2.1, "powerlaw.norm": 2e-3}


def test_second_fit_and_new_spectrum_do_not_recompile():
    import jax

    model = ToyModel()
    obs = toy_observation(model, TRUTH, seed=21, name="cache")
    spec = model_with_priors(model, PRIORS)
    first = fit(spec, obs, chains=2, warmup=150, samples=150, seed=0, progress=False,
                chunk=50)
    counts = trace_counts()
    assert counts.get("log_density", 0) >= 1 and counts.get("pointwise", 0) >= 1
    # the same problem again, a re-parsed spec, and a new spectrum of the same shape
    again = fit(model_with_priors(model, PRIORS), obs, chains=2, warmup=150, samples=150,
                seed=1, progress=False, chunk=50)
    other = toy_observation(model, TRUTH, seed=22, name="cache")
    third = fit(spec, other, chains=2, warmup=150, samples=150, seed=2, progress=False,
                chunk=50)
    assert trace_counts() == counts
    assert again.timings["compile"] < first.timings["compile"]
    assert not np.array_equal(third.draws.observed, first.draws.observed)
    # the problem object (and its compiled functions) is shared
    p1, _ = get_problem(spec, [obs])
    p2, _ = get_problem(model_with_priors(model, PRIORS), [other])
    assert p1 is p2
    assert jax.config.jax_compilation_cache_dir  # persistent cache enabled at the first fit
