"""The model layer: XSPEC-style expressions evaluated exactly and fast in JAX.

Example:
    >>> from jxspec_nb.model import parse_model
    >>> m = parse_model("tbabs*(powerlaw + bbodyrad)")
    >>> m.expression
    'tbabs*(powerlaw + bbodyrad)'
"""

from __future__ import annotations

from .components.table_model import load_table_model
from .registry import ComponentSpec, ParamSpec, component_names, get_component, register_component
from .spectral import Parameter, SpectralModel, parse_model

__all__ = [
    "ComponentSpec",
    "ParamSpec",
    "Parameter",
    "SpectralModel",
    "component_names",
    "get_component",
    "load_table_model",
    "parse_model",
    "register_component",
]
