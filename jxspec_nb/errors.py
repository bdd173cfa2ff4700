"""One error hierarchy for jxspec_nb.

Every user mistake raises a subclass of :class:`JxspecError` whose message names
*where* the problem is (file, HDU, keyword or column; or line and column of a
model / prior text) and *what would be right*. Bugs keep their own tracebacks.

In a notebook the magics turn these into one-line ``UsageError`` messages.
"""

from __future__ import annotations

__all__ = ["JxspecError", "DataError", "ModelError", "PriorError", "FitError"]


class JxspecError(Exception):
    """Base class of every error jxspec_nb raises for bad input."""


class DataError(JxspecError, ValueError):
    """A data file or data argument is wrong.

    Args:
        message: what is wrong and what would be right.
        path: the file concerned, if any.
        hdu: the HDU (name or index), if any.
        keyword: the header keyword or column, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        hdu: str | int | None = None,
        keyword: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.hdu = hdu
        self.keyword = keyword
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path)
        if hdu is not None:
            where.append(f"HDU {hdu!r}" if isinstance(hdu, str) else f"HDU {hdu}")
        if keyword is not None:
            where.append(keyword)
        prefix = "[" + ", ".join(where) + "] " if where else ""
        super().__init__(prefix + message)


class _TextError(JxspecError, ValueError):
    """An error located in a piece of text (model expression, prior line)."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        col: int | None = None,
        source: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.line = line
        self.col = col
        self.source = source
        self.suggestion = suggestion
        self.reason = message
        loc = ""
        if line is not None:
            loc = f"line {line}" + (f", column {col}" if col is not None else "") + ": "
        text = loc + message
        if suggestion:
            text += f" (did you mean {suggestion!r}?)"
        super().__init__(text)

    def pointer(self) -> str:
        """The offending source line with a caret under the column, if known."""
        if self.source is None or self.line is None:
            return ""
        lines = self.source.splitlines() or [""]
        if not 1 <= self.line <= len(lines):
            return ""
        text = lines[self.line - 1]
        caret = " " * max((self.col or 1) - 1, 0) + "^"
        return f"{text}\n{caret}"


class ModelError(_TextError):
    """A model expression or component is wrong (unknown name, bad syntax...)."""


class PriorError(_TextError):
    """A prior, fixed value or tie is wrong (bad syntax, outside hard limits...)."""


class FitError(JxspecError, RuntimeError):
    """A fit cannot run or failed (no free parameter, incompatible observations...)."""
