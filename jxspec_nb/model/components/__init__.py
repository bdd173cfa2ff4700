"""The built-in XSPEC components (importing this package registers them).

- :mod:`.additive`: powerlaw, zpowerlw, bknpower, cutoffpl, bbody, bbodyrad, zbbody,
  diskbb, bremss, gaussian, zgauss, lorentz, logpar, grbm, constadd
- :mod:`.multiplicative`: tbabs, ztbabs, phabs, zphabs, wabs, zwabs, constant, expabs,
  highecut, gabs, zedge, cabs
- :mod:`.convolution`: cflux, zashift, vashift, gsmooth, vbroad
- :mod:`.table_model`: OGIP atable / mtable files (:func:`load_table_model`)
"""

from __future__ import annotations

from . import additive, convolution, multiplicative  # noqa: F401

__all__ = ["additive", "multiplicative", "convolution"]
