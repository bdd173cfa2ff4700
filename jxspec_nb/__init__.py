"""jxspec_nb: Jupyter-native Bayesian X-ray spectral fitting on JAX and numpyro.

``import jxspec_nb`` is cheap: JAX, numpyro and matplotlib are imported only when
an attribute that needs them is first used. In a notebook::

    %load_ext jxspec_nb

registers the ``%xdata``, ``%%xmodel`` and ``%xfit`` magics.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DataError, FitError, JxspecError, ModelError, PriorError

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "Observation": "jxspec_nb.data",
    "load_observation": "jxspec_nb.data",
    "fakeit": "jxspec_nb.data",
    "gaussian_rmf": "jxspec_nb.data",
    "diagonal_rmf": "jxspec_nb.data",
    "datasets": "jxspec_nb.datasets",
    "parse_model": "jxspec_nb.model",
    "SpectralModel": "jxspec_nb.model",
    "register_component": "jxspec_nb.model",
    "model_with_priors": "jxspec_nb.inference",
    "fit": "jxspec_nb.inference",
    "FitResult": "jxspec_nb.results",
    "load_result": "jxspec_nb.results",
}

__all__ = [
    "DataError",
    "FitError",
    "JxspecError",
    "ModelError",
    "PriorError",
    "__version__",
    "load_ipython_extension",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jxspec_nb' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """Register the jxspec_nb magics (``%load_ext jxspec_nb``)."""
    from .notebook.magics import load_ipython_extension as _load

    _load(ipython)
