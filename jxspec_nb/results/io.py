"""Save and load a :class:`~jxspec_nb.results.FitResult`: netCDF, never pickle.

The arviz groups are written with ``InferenceData.to_netcdf``; everything else
(spec text, method, statistic, timings, ELBO, best fit, method extras) goes as
one JSON string in the ``jxspec_nb`` attribute of the posterior group. Floats
round-trip exactly (JSON keeps ``repr`` precision). The spec is re-parsed from
its text on load.

>>> result.save("fit.nc"); again = load_result("fit.nc")     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FitError

__all__ = ["save_result", "load_result", "rebuild_problem"]

_ATTR = "jxspec_nb"
_ENGINE = "h5netcdf"


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save_result(result: Any, path: str | os.PathLike[str]) -> None:
    """Write ``result`` to ``path`` (netCDF4/HDF5 via h5netcdf)."""
    if not hasattr(result.spec, "text"):
        raise FitError("this result's spec has no text form and cannot be saved")
    meta = {
        "format": 1,
        "method": result.method,
        "spec": result.spec.text,
        "stat": result.stat,
        "fit_statistic": result.fit_statistic,
        "dof": result.dof,
        "log_evidence": result.log_evidence,
        "log_evidence_err": result.log_evidence_err,
        "elbo": None if result.elbo is None else _to_json(np.asarray(result.elbo)),
        "best_fit": result.best_fit,
        "timings": result.timings,
        "extra": _to_json(result.extra),
        "background": result.background,
        "observations": [str(getattr(o, "name", "") or f"obs{i}")
                         for i, o in enumerate(result.observations)]
        or result.extra.get("_observation_names", []),
    }
    idata = result.idata
    idata.posterior.attrs[_ATTR] = json.dumps(meta, allow_nan=True)
    try:
        idata.to_netcdf(str(path), engine=_ENGINE)
    finally:
        idata.posterior.attrs.pop(_ATTR, None)


def load_result(path: str | os.PathLike[str], observations: Sequence[Any] = ()) -> Any:
    """Read a result written by :meth:`FitResult.save`.

    Args:
        path: the file.
        observations: the fitted observations, to attach again (optional: the
            observed counts are in the file; plots of folded spectra need them).
    """
    import arviz as az

    from ..inference.priors import model_with_priors
    from ._idata import idata_to_draws
    from .result import FitResult

    idata = az.from_netcdf(str(path), engine=_ENGINE)
    for group in idata.groups():
        getattr(idata, group).load()
    raw = idata.posterior.attrs.pop(_ATTR, None)
    if raw is None:
        raise FitError(f"{path} was not written by FitResult.save (no {_ATTR!r} attribute)")
    meta = json.loads(raw)
    spec = model_with_priors(meta["spec"])
    elbo = _from_json(meta["elbo"])
    extra = _from_json(meta["extra"])
    extra.setdefault("_observation_names", meta["observations"])
    draws = idata_to_draws(idata)
    order = [*spec.free_names, *spec.ties]  # netCDF does not keep the variable order
    order += [k for k in draws.posterior if k not in order]
    draws = draws._replace(posterior={k: draws.posterior[k] for k in order
                                      if k in draws.posterior})
    return FitResult(
        draws=draws, _idata=idata, method=meta["method"], spec=spec,
        observations=tuple(observations),
        timings=meta["timings"], stat=meta["stat"], fit_statistic=meta["fit_statistic"],
        dof=meta["dof"], log_evidence=meta["log_evidence"],
        log_evidence_err=meta["log_evidence_err"], elbo=elbo, best_fit=meta["best_fit"],
        extra=extra, background=meta["background"],
    )


def _background_arg(result: Any) -> Any:
    text = result.background or "none"
    if "\n" in text:
        from ..inference.priors import model_with_priors

        return model_with_priors(text)
    modes = set(text.split(","))
    if modes <= {"none"}:
        return "ignore"
    return modes.pop() if len(modes) == 1 else "auto"


def rebuild_problem(result: Any) -> Any:
    """The :class:`~jxspec_nb.inference.compile.Problem` of a (loaded) result."""
    from ..inference.compile import ObsLayout, Problem, get_problem

    if result.observations:
        prob, data = get_problem(result.spec, result.observations, stat=result.stat,
                                 background=_background_arg(result))
        object.__setattr__(result, "data", data)
        return prob
    names = result.extra.get("_observation_names") or ["obs0"]
    obs_index = result.draws.obs_index
    layouts = tuple(ObsLayout(n, "none", False, int((obs_index == i).sum()))
                    for i, n in enumerate(names))
    bkg = _background_arg(result)
    return Problem(result.spec, layouts, result.stat, bkg if hasattr(bkg, "text") else None)
