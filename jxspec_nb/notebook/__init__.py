"""The notebook layer: IPython magics and live progress widgets.

Import-light on purpose: nothing heavy is imported until a magic runs. In a
notebook::

    %load_ext jxspec_nb
    %xdata ulx4 = dataset:ngc7793_ulx4
    %%xmodel m
    ...
    %xfit m ulx4

Modules: :mod:`~jxspec_nb.notebook.magics` (``%xdata``, ``%%xmodel``, ``%xfit``,
``%xsim``, ``%xplot``) and :mod:`~jxspec_nb.notebook.widgets` (the ipywidgets
progress reporter).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the jxspec_nb magics on ``ipython``."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond what IPython does itself (kept for symmetry)."""
