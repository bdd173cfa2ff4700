"""Lowered sampler programs kept across processes (``jax.export``).

JAX's persistent compilation cache (:func:`~.compile.enable_persistent_cache`)
spares a new process XLA's compile, but not the Python work before it: tracing
the NUTS sampler around the log density and lowering it to StableHLO, about 1 s on
ULX-4, a fifth of a warm fit. This module keeps the lowered programs themselves,
serialised by ``jax.export`` (StableHLO bytecode and the call signature in a
flatbuffer: no pickle), in ``<compilation cache>/exported/``. A later process
deserialises them and calls them through a thin ``jit``/``pmap`` wrapper, whose
XLA executable then comes from the compilation cache.

A stored program is found again only under a key naming everything it was traced
from: the versions of Python, jax, jaxlib and numpyro, a hash of jxspec_nb's own
source files and packaged tables, the model expression and the canonical text of
its priors, ties and fixed values, the fit statistic, each observation's layout
(background treatment, fold storage, hash of its energy grid), the shapes and
dtypes of the data arguments, the devices, and the sampler's options. A change to
any of these misses and traces afresh. Models with a user-registered component or
a table model (Python code or files outside the package) are never stored.

``JXSPEC_NB_CACHE=off`` turns this off with the compilation cache; any failure to
read, write or call a stored program falls back to tracing, never fails a fit.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from .._jax import jax

__all__ = ["program_key", "load", "save", "export_fn", "cached_jit", "avals_of"]

_SUFFIX = ".jxexport"


@functools.lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """Hash of jxspec_nb's source files and packaged tables (names and sizes),
    with the versions of the libraries that trace and lower the programs."""
    from importlib import metadata

    import jaxlib

    import jxspec_nb

    try:  # the installed version, without importing numpyro (0.2 s) in a warm process
        numpyro_version = metadata.version("numpyro")
    except metadata.PackageNotFoundError:  # pragma: no cover - numpyro is a dependency
        numpyro_version = ""

    root = Path(jxspec_nb.__file__).resolve().parent
    h = hashlib.blake2b(digest_size=16)
    for part in (platform.python_version(), jax.__version__,
                 getattr(jaxlib, "__version__", ""), numpyro_version,
                 getattr(jxspec_nb, "__version__", "")):
        h.update(str(part).encode() + b"|")
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    tables = root / "model" / "tables"
    if tables.is_dir():
        for path in sorted(tables.iterdir()):
            h.update(f"{path.name}:{path.stat().st_size}".encode())
    return h.hexdigest()


def _folder() -> Path | None:
    from .compile import cache_folder

    base = cache_folder()
    return None if base is None else base / "exported" / package_fingerprint()


def exportable(problem: Any) -> bool:
    """True when the problem's models are parsed expressions of built-in components
    (not user-registered components, table models or duck-typed model objects)."""
    from ..model.expression import components_of
    from ..model.registry import get_component
    from ..model.spectral import SpectralModel

    for spec in (problem.spec, problem.bkg_spec):
        if spec is None:
            continue
        if not isinstance(spec.model, SpectralModel):
            return False
        for comp in components_of(spec.model.tree):
            found = get_component(comp.name)
            if found is None or not found.builtin:
                return False
    return True


def program_key(problem: Any, data: Any, what: tuple[Any, ...]) -> str | None:
    """Key of the programs of ``what`` (method and options) for this problem and data,
    or None when they must not be stored (cache off, user components, no flatbuffers)."""
    try:
        import flatbuffers  # noqa: F401  (jax.export's serialisation needs it)
    except ImportError:
        return None
    if _folder() is None or not exportable(problem):
        return None
    model = problem.spec.model
    avals = [(tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(data)]
    devices = [(d.platform, d.device_kind) for d in jax.local_devices()]
    parts = (
        problem.spec.key, None if problem.bkg_spec is None else problem.bkg_spec.key,
        (model.order, model.max_rel_width), problem.stat, problem.layouts,
        str(jax.tree.structure(data)), avals, devices, bool(jax.config.jax_enable_x64), what,
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


def load(key: str | None, name: str) -> Any:
    """The stored program ``name`` of ``key``, or None."""
    folder = _folder()
    if key is None or folder is None:
        return None
    path = folder / f"{key}.{name}{_SUFFIX}"
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        return jax.export.deserialize(bytearray(blob))
    except Exception:  # noqa: BLE001  (a damaged or foreign file: trace afresh)
        _remove(path)
        return None


def save(key: str | None, name: str, exported: Any) -> Any:
    """Store ``exported``; returns the program as a later process will read it
    (deserialised), so that this process compiles the same module as later ones."""
    folder = _folder()
    if key is None or folder is None:
        return exported
    blob = bytes(exported.serialize())
    try:
        if not folder.is_dir():
            _prune(folder.parent, keep=folder.name)
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{key}.{name}{_SUFFIX}"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except OSError:
        pass
    return jax.export.deserialize(bytearray(blob))


def export_fn(fn: Any, *avals: Any) -> Any:
    """``jax.export`` of ``jit(fn)`` at these abstract arguments."""
    return jax.export.export(jax.jit(fn))(*avals)


def avals_of(tree: Any) -> Any:
    """The abstract values (shape, dtype) of a pytree of arrays."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def cached_jit(problem: Any, data: Any, name: str, what: tuple[Any, ...], fn: Any,
               *avals: Any) -> Any:
    """``jit`` of the exported ``fn`` at ``avals``: read back when stored under this
    problem, data and ``what``, else traced now and stored. None when the program
    cannot be stored (see :func:`program_key`) or export fails: use ``jit(fn)``."""
    key = program_key(problem, data, what)
    if key is None:
        return None
    exported = load(key, name)
    if exported is None:
        try:
            exported = save(key, name, export_fn(fn, *avals))
        except Exception:  # noqa: BLE001  (not exportable here: the caller traces)
            return None
    return jax.jit(exported.call)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _prune(parent: Path, keep: str) -> None:
    """Drop the folders of other package fingerprints: they can never be read again."""
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        if child.is_dir() and child.name != keep:
            shutil.rmtree(child, ignore_errors=True)
