"""One module per fit method, all with the same ``run(problem, data, observations,
*, chains, warmup, samples, steps, seed, progress, timer, **options) -> FitResult``."""
