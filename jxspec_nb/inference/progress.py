"""Progress reporting: the protocol the samplers call, and a text implementation.

Samplers run in compiled chunks of iterations and call the reporter between
chunks only, so reporting costs nothing per step. The notebook layer provides
an ipywidgets reporter with the same three methods.

>>> p = TextProgress(stream=None)
>>> p.start(method="nuts", total=2000, chains=4, labels=["a"])
>>> p.update(chain=None, done=1000, info={"step_size": 0.5})
>>> p.finish()
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO, runtime_checkable

__all__ = ["Progress", "TextProgress", "NullProgress", "resolve_progress"]


@runtime_checkable
class Progress(Protocol):
    """What a fit reports to (see the module docstring)."""

    def start(self, *, method: str, total: int, chains: int, labels: list[str]) -> None:
        """A fit begins: ``total`` iterations (or steps) per chain."""

    def update(self, *, chain: int | None, done: int, info: dict[str, float]) -> None:
        """``done`` iterations finished (``chain=None``: all chains); live diagnostics."""

    def finish(self, *, interrupted: bool = False) -> None:
        """The fit ended (``interrupted`` after a KeyboardInterrupt)."""


class NullProgress:
    """Reports nothing."""

    def start(self, *, method: str, total: int, chains: int, labels: list[str]) -> None:
        pass

    def update(self, *, chain: int | None, done: int, info: dict[str, float]) -> None:
        pass

    def finish(self, *, interrupted: bool = False) -> None:
        pass


class TextProgress:
    """One line per update on a text stream (stderr by default; None = silent).

    Args:
        stream: where to write.
        min_interval: seconds between lines (the final update is always written).
    """

    def __init__(self, stream: TextIO | None = sys.stderr, min_interval: float = 1.0) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self.lines: list[str] = []
        self._t0 = self._last = 0.0
        self._total = 1
        self._method = ""

    def start(self, *, method: str, total: int, chains: int, labels: list[str]) -> None:
        self._t0 = self._last = time.perf_counter()
        self._total, self._method = max(int(total), 1), method
        self._emit(f"{method}: {chains} chain(s) x {total} iterations")

    def update(self, *, chain: int | None, done: int, info: dict[str, float]) -> None:
        now = time.perf_counter()
        if now - self._last < self.min_interval and done < self._total:
            return
        self._last = now
        diag = ", ".join(f"{k}={_fmt(v)}" for k, v in info.items())
        who = "" if chain is None else f"chain {chain}: "
        pct = 100.0 * done / self._total
        self._emit(f"{self._method}: {who}{done}/{self._total} ({pct:.0f}%) "
                   f"{now - self._t0:.1f}s {diag}".rstrip())

    def finish(self, *, interrupted: bool = False) -> None:
        state = "interrupted" if interrupted else "done"
        self._emit(f"{self._method}: {state} in {time.perf_counter() - self._t0:.1f}s")

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        if self.stream is not None:
            print(line, file=self.stream, flush=True)


def _fmt(v: Any) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e6):
        return str(int(v))
    return f"{v:.3g}"


def _in_kernel() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def resolve_progress(progress: Any) -> Any:
    """``None`` -> automatic (widgets in a kernel when available, else text);
    ``False`` -> silent; an object -> itself."""
    if progress is False:
        return NullProgress()
    if progress is None:
        if _in_kernel():
            try:
                from ..notebook.widgets import WidgetProgress

                return WidgetProgress()
            except (ImportError, AttributeError):
                pass
        return TextProgress()
    if progress is True:
        return TextProgress()
    for name in ("start", "update", "finish"):
        if not callable(getattr(progress, name, None)):
            raise TypeError(f"progress object needs a {name}() method")
    return progress
