"""Live fit progress as ipywidgets: a bar per chain (or one overall), elapsed and
remaining time, and the sampler's diagnostics (step size, acceptance rate and
divergences for NUTS; ELBO for VI; log-evidence for nested sampling).

:class:`WidgetProgress` implements the progress protocol of
:mod:`jxspec_nb.inference.progress` (``start`` / ``update`` / ``finish``), so it
can be handed to :func:`jxspec_nb.inference.fit` directly::

    >>> from jxspec_nb.notebook.widgets import WidgetProgress
    >>> result = fit(spec, obs, progress=WidgetProgress())    # doctest: +SKIP

:func:`auto_progress` picks it inside a Jupyter kernel and the text reporter
elsewhere. Widget updates are throttled (``min_interval``) so that a fast
sampler does not flood the kernel's message channel; the final state is always
rendered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["WidgetProgress", "auto_progress", "in_kernel", "format_info", "format_seconds"]

# display order and label of the diagnostics the inference layer reports
_INFO_LABELS = {
    "step_size": "step size",
    "accept_prob": "acceptance",
    "divergences": "divergences",
    "steps": "leapfrog steps",
    "elbo": "ELBO",
    "log_z": "ln Z",
    "loss": "loss",
}


def in_kernel() -> bool:
    """Whether code runs inside a Jupyter kernel (where widgets can render)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def format_seconds(seconds: float | None) -> str:
    """``73.2`` -> ``'1 min 13 s'``; ``None`` -> ``'?'``.

    Example:
        >>> format_seconds(73.2)
        '1 min 13 s'
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_info(info: Mapping[str, Any]) -> str:
    """Diagnostics as one short text line, known keys first.

    Example:
        >>> format_info({"step_size": 0.1234, "accept_prob": 0.8, "divergences": 0})
        'step size 0.123 · acceptance 0.80 · divergences 0'
    """
    parts = []
    keys = [k for k in _INFO_LABELS if k in info] + [k for k in info if k not in _INFO_LABELS]
    for key in keys:
        value = info[key]
        label = _INFO_LABELS.get(key, key.replace("_", " "))
        try:
            x = float(value)
        except (TypeError, ValueError):
            parts.append(f"{label} {value}")
            continue
        if key == "divergences":
            parts.append(f"{label} {int(x)}")
        elif key == "accept_prob":
            parts.append(f"{label} {x:.2f}")
        else:
            parts.append(f"{label} {x:.4g}" if key in ("elbo", "log_z", "loss") else
                         f"{label} {x:.3g}")
    return " · ".join(parts)


class WidgetProgress:
    """Progress reporter drawn with ipywidgets.

    Args:
        min_interval: seconds between two widget refreshes (the last state is
            always drawn by :meth:`finish`).
        show: display the widget when the fit starts (set False to embed
            :attr:`widget` yourself).

    Attributes:
        widget: the ``ipywidgets.VBox`` (None before :meth:`start`).
        bars: one ``IntProgress`` per chain, or a single overall one.
        status: ``"idle"``, ``"preparing"``, ``"running"``, ``"done"`` or
            ``"interrupted"``.

    Example:
        >>> p = WidgetProgress(show=False)
        >>> p.start(method="nuts", total=10, chains=2, labels=["chain 0", "chain 1"])
        >>> p.update(chain=0, done=10, info={"step_size": 0.5})
        >>> p.finish()
        >>> [b.value for b in p.bars], p.status
        ([10, 10], 'done')
    """

    def __init__(self, *, min_interval: float = 0.1, show: bool = True) -> None:
        self.min_interval = float(min_interval)
        self.show = show
        self.widget: Any = None
        self.bars: list[Any] = []
        self.status = "idle"
        self.method = ""
        self.total = 0
        self._done: list[int] = []
        self._info: list[dict[str, Any]] = []
        self._stats: list[Any] = []
        self._header: Any = None
        self._footer: Any = None
        self._t0 = 0.0
        self._last_draw = 0.0

    # -- before the fit -------------------------------------------------------------
    def prepare(self, method: str) -> None:
        """Show ``method: preparing…`` at once: the fit compiles before it can start."""
        import ipywidgets as w

        self.method = str(method)
        self.status = "preparing"
        self._header = w.HTML(value=self._header_html("preparing"))
        self.widget = w.VBox([self._header])
        if self.show:
            from IPython.display import display

            display(self.widget)

    # -- protocol ---------------------------------------------------------------
    def start(self, *, method: str, total: int, chains: int, labels: Sequence[str]) -> None:
        """Build (or fill the prepared) widget: one bar per label (or per chain)."""
        import ipywidgets as w

        self.method, self.total = str(method), max(int(total), 1)
        names = [str(x) for x in labels] if labels else (
            [f"chain {i}" for i in range(chains)] if chains > 1 else [self.method]
        )
        self.bars = [
            w.IntProgress(value=0, min=0, max=self.total, description=name, bar_style="info",
                          style={"description_width": "initial"},
                          layout=w.Layout(width="320px"))
            for name in names
        ]
        self._stats = [w.HTML(value="") for _ in names]
        self._done = [0] * len(names)
        self._info = [{} for _ in names]
        self.status = "running"
        self._footer = w.HTML(value="")
        rows = [w.HBox([bar, stat]) for bar, stat in zip(self.bars, self._stats)]
        self._t0 = self._last_draw = time.perf_counter()
        if self.widget is not None:  # prepared: fill the widget already on screen
            self._header.value = self._header_html("running")
            self.widget.children = (self._header, *rows, self._footer)
            return
        self._header = w.HTML(value=self._header_html("running"))
        self.widget = w.VBox([self._header, *rows, self._footer])
        if self.show:
            from IPython.display import display

            display(self.widget)

    def update(self, *, chain: int | None, done: int, info: Mapping[str, Any]) -> None:
        """Record progress of ``chain`` (None: every bar) and redraw if due."""
        if not self.bars:
            return
        targets = range(len(self.bars)) if chain is None else [min(int(chain), len(self.bars) - 1)]
        for i in targets:
            self._done[i] = min(int(done), self.total)
            self._info[i].update(info or {})
        now = time.perf_counter()
        # redraw when due, at the end of a round over the chains, and when all are done
        end_of_round = chain is None or int(chain) >= len(self.bars) - 1
        if (now - self._last_draw >= self.min_interval or end_of_round
                or min(self._done) >= self.total):
            self._draw(now)

    def finish(self, *, interrupted: bool = False) -> None:
        """Draw the final state: green bars, or orange ones and 'interrupted'."""
        if not self.bars:
            if self._header is not None:  # stopped while preparing
                self.abort("interrupted before sampling started" if interrupted else "stopped")
            return
        self.status = "interrupted" if interrupted else "done"
        self._draw(time.perf_counter())
        for bar in self.bars:
            bar.bar_style = "warning" if interrupted else "success"
        self._header.value = self._header_html(self.status)

    def abort(self, reason: str) -> None:
        """The fit stopped with an error: say so in the header (red)."""
        self.status = "failed"
        if self._header is not None:
            self._header.value = (f"<b>{escape(self.method)}</b> <span style='color:#d32f2f' "
                                  f"class='jxs-progress-state'>{escape(reason)}</span>")
        for bar in self.bars:
            bar.bar_style = "danger"

    # -- drawing ----------------------------------------------------------------
    def _header_html(self, state: str) -> str:
        colour = {"preparing": "inherit", "running": "inherit", "done": "#388e3c",
                  "interrupted": "#f57c00"}[state]
        text = {"preparing": "preparing (compiling the model)…", "running": "running…",
                "done": "done",
                "interrupted": "interrupted — keeping the samples drawn so far"}[state]
        return (f"<b>{escape(self.method)}</b> <span style='color:{colour}'"
                f" class='jxs-progress-state'>{escape(text)}</span>")

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since :meth:`start`."""
        return (time.perf_counter() if now is None else now) - self._t0

    def remaining(self, now: float | None = None) -> float | None:
        """Estimated seconds left, from the slowest bar's rate (None before any step)."""
        slowest = min(self._done) if self._done else 0
        if slowest <= 0:
            return None
        elapsed = self.elapsed(now)
        return elapsed * (self.total - slowest) / slowest

    def _draw(self, now: float) -> None:
        self._last_draw = now
        for bar, stat, done, info in zip(self.bars, self._stats, self._done, self._info):
            bar.value = done
            stat.value = f"<span style='font-size:12px'>{escape(format_info(info))}</span>"
        remaining = 0.0 if self.status != "running" else self.remaining(now)
        total_div = sum(int(i.get("divergences", 0) or 0) for i in self._info)
        parts = [f"elapsed {format_seconds(self.elapsed(now))}"]
        if self.status == "running":
            parts.append(f"remaining ~{format_seconds(remaining)}")
        if any("divergences" in i for i in self._info) and len(self.bars) > 1:
            parts.append(f"divergences (all chains) {total_div}")
        self._footer.value = f"<span style='font-size:12px'>{' · '.join(parts)}</span>"


def auto_progress() -> Any:
    """A :class:`WidgetProgress` inside a Jupyter kernel, else the text reporter.

    Example:
        >>> type(auto_progress()).__name__ in {"WidgetProgress", "TextProgress"}
        True
    """
    if in_kernel():
        return WidgetProgress()
    import sys

    from jxspec_nb.inference.progress import TextProgress

    return TextProgress(stream=sys.stderr)  # the stream of now (it may be redirected)
