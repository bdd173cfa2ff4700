"""Small arithmetic for parameter ties, parsed with :mod:`ast`, never eval'd.

Allowed: numbers, parameter names (``bbodyrad.kT``, ``powerlaw.norm[obs2]``),
``+ - * / **``, unary minus, parentheses and the functions ``exp``, ``log``,
``log10``, ``sqrt``.

>>> t = parse_tie("2 * bbodyrad.kT + 0.1", {"bbodyrad.kT"})
>>> t.depends
('bbodyrad.kT',)
>>> float(t.evaluate({"bbodyrad.kT": 1.0}))
2.1
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tie", "parse_tie", "TieSyntaxError"]

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCS = ("exp", "log", "log10", "sqrt")


class TieSyntaxError(ValueError):
    """Raised with ``col`` (0-based offset inside the expression)."""

    def __init__(self, message: str, col: int, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.col = col
        self.suggestion = suggestion


def dotted_name(node: ast.AST) -> str | None:
    """``a.b`` / ``a`` / ``a.b[obs]`` as text, or None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr}"
    if isinstance(node, ast.Subscript):
        head = dotted_name(node.value)
        sl = node.slice
        if isinstance(sl, ast.Name):
            key = sl.id
        elif isinstance(sl, ast.Constant) and isinstance(sl.value, int | str):
            key = str(sl.value)
        else:
            return None
        return None if head is None else f"{head}[{key}]"
    return None


@dataclass(frozen=True)
class Tie:
    """A parameter defined as a function of others."""

    text: str
    depends: tuple[str, ...]
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluate with ``values`` (floats or JAX arrays) for the names used."""
        return _eval(self._tree, values)


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Call):
        import jax.numpy as jnp

        fn = getattr(jnp, node.func.id)  # type: ignore[attr-defined]
        return fn(_eval(node.args[0], values))
    return values[dotted_name(node)]  # type: ignore[index]


def parse_tie(text: str, known: set[str] | frozenset[str]) -> Tie:
    """Parse a tie expression; names must be in ``known``.

    Raises:
        TieSyntaxError: with the 0-based column of the problem.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise TieSyntaxError(f"cannot parse {text.strip()!r}: {exc.msg}",
                             max((exc.offset or 1) - 1, 0)) from None
    depends: list[str] = []
    _check(tree, known, depends)
    return Tie(text.strip(), tuple(dict.fromkeys(depends)), tree)


def _check(node: ast.AST, known: set[str] | frozenset[str], out: list[str]) -> None:
    col = getattr(node, "col_offset", 0)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise TieSyntaxError(f"only numbers are allowed, got {node.value!r}", col)
        if not math.isfinite(node.value):
            raise TieSyntaxError("numbers must be finite", col)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise TieSyntaxError("only + - * / ** are allowed", col)
        _check(node.left, known, out)
        _check(node.right, known, out)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _check(node.operand, known, out)
        return
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise TieSyntaxError(f"only the functions {', '.join(_FUNCS)} are allowed", col)
        if len(node.args) != 1 or node.keywords:
            raise TieSyntaxError(f"{node.func.id}() takes exactly one argument", col)
        _check(node.args[0], known, out)
        return
    name = dotted_name(node)
    if name is None:
        raise TieSyntaxError("not allowed in a tie: use numbers, parameter names and + - * / **",
                             col)
    if name not in known:
        from ._names import closest

        raise TieSyntaxError(f"unknown parameter {name!r} in tie", col, closest(name, known))
    out.append(name)
