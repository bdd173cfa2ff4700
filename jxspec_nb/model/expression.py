"""Parse XSPEC-style model expressions into a small tree (never ``eval``).

Grammar (whitespace and newlines are free; names are case-insensitive)::

    sum     := product ("+" product)*
    product := factor ("*" factor)*
    factor  := "(" sum ")" | NAME [":" LABEL] ["(" sum ")"]

``conv(expr)`` applies a convolution; a bare convolution inside a product
(``tbabs*cflux*powerlaw``) applies to the factors on its right, as in XSPEC.
``mult(expr)`` means ``mult*(expr)``. Repeated components are labelled
``gaussian``, ``gaussian_2``, ...; ``gaussian:fe_w`` gives an explicit label and
``gaussian_3`` names the third one directly.

Example:
    >>> tree = parse_expression("tbabs*(powerlaw + bbodyrad)")
    >>> to_text(tree)
    'tbabs*(powerlaw + bbodyrad)'
    >>> [c.label for c in components_of(tree)]
    ['tbabs', 'powerlaw', 'bbodyrad']
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

from ..errors import ModelError
from .registry import component_names, get_component

__all__ = ["Comp", "Sum", "Prod", "Conv", "parse_expression", "to_text", "components_of"]

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>[0-9][0-9.eE+-]*)|(?P<op>.))")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ALIAS = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9]*)_(?P<k>[0-9]+)$")


@dataclass(frozen=True)
class Comp:
    """One component occurrence: XSPEC ``name``, final ``label``, source position."""

    name: str
    label: str
    kind: str
    explicit: bool = False
    alias: bool = False
    line: int = 1
    col: int = 1


@dataclass(frozen=True)
class Sum:
    terms: tuple


@dataclass(frozen=True)
class Prod:
    factors: tuple


@dataclass(frozen=True)
class Conv:
    comp: Comp
    arg: object


@dataclass(frozen=True)
class _Tok:
    kind: str  # name, num, op, end
    text: str
    line: int
    col: int


def _tokenize(text: str) -> list[_Tok]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)

    def where(pos: int) -> tuple[int, int]:
        line = max(i for i, s in enumerate(starts) if s <= pos)
        return line + 1, pos - starts[line] + 1

    toks: list[_Tok] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        m = _TOKEN.match(text, pos)
        kind = m.lastgroup or "op"
        start = m.start(kind)
        line, col = where(start)
        toks.append(_Tok(kind, m.group(kind), line, col))
        pos = m.end()
    line, col = where(len(text.rstrip()))
    toks.append(_Tok("end", "", line, col))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def error(self, msg: str, tok: _Tok, suggestion: str | None = None) -> ModelError:
        return ModelError(msg, line=tok.line, col=tok.col, source=self.text, suggestion=suggestion)

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def describe(self, tok: _Tok) -> str:
        return "the end of the expression" if tok.kind == "end" else repr(tok.text)

    def parse(self) -> object:
        if self.tok.kind == "end":
            raise self.error("empty model expression; write e.g. 'tbabs*powerlaw'", self.tok)
        node = self.sum()
        if self.tok.kind != "end":
            t = self.tok
            if t.text == ")":
                raise self.error("unmatched ')'", t)
            if t.kind == "op" and t.text not in "+*():":
                raise self.error(
                    f"unexpected character {t.text!r}; models use only names, '+', '*' and "
                    "parentheses",
                    t,
                )
            raise self.error(f"expected '+', '*' or the end of the expression, got {t.text!r}", t)
        return node

    def sum(self) -> object:
        terms = [self.product()]
        while self.tok.text == "+":
            self.i += 1
            terms.append(self.product())
        flat: list = []
        for t in terms:
            flat.extend(t.terms if isinstance(t, Sum) else [t])
        return flat[0] if len(flat) == 1 else Sum(tuple(flat))

    def product(self) -> object:
        factors: list[tuple[object, _Tok | None]] = [self.factor()]
        while self.tok.text == "*":
            self.i += 1
            factors.append(self.factor())
        # a bare convolution applies to the product of the factors on its right
        node: object | None = None
        for f, bare_tok in reversed(factors):
            if bare_tok is not None:
                if node is None:
                    raise self.error(
                        f"convolution {f.name!r} needs a model to act on, "
                        f"e.g. '{f.name}(powerlaw)'",
                        bare_tok,
                    )
                node = Conv(f, node)
            elif node is None:
                node = f
            else:
                left = list(f.factors) if isinstance(f, Prod) else [f]
                right = list(node.factors) if isinstance(node, Prod) else [node]
                node = Prod(tuple(left + right))
        return node

    def factor(self) -> tuple[object, _Tok | None]:
        t = self.tok
        if t.text == "(":
            self.i += 1
            node = self.sum()
            self.expect_close(t)
            return node, None
        if t.kind == "num":
            raise self.error(
                f"numbers are not components ({t.text!r}); use 'constant' and set "
                "constant.factor instead",
                t,
            )
        if t.kind != "name":
            if t.kind == "end":
                raise self.error("expected a component name, got the end of the expression", t)
            if t.text in "+*)":
                raise self.error(f"expected a component name, got {t.text!r}", t)
            raise self.error(
                f"unexpected character {t.text!r}; models use only names, '+', '*' and "
                "parentheses",
                t,
            )
        self.i += 1
        comp = self.component(t)
        if self.tok.text == "(":
            open_tok = self.tok
            self.i += 1
            arg = self.sum()
            self.expect_close(open_tok)
            if comp.kind == "convolution":
                return Conv(comp, arg), None
            if comp.kind == "multiplicative":
                rest = list(arg.factors) if isinstance(arg, Prod) else [arg]
                return Prod((comp, *rest)), None
            raise self.error(
                f"additive component {comp.name!r} cannot be applied to '(...)'; "
                "use '*' or '+' between components",
                open_tok,
            )
        if comp.kind == "convolution":
            return comp, t
        return comp, None

    def component(self, t: _Tok) -> Comp:
        raw = t.text
        name, label, explicit, alias = raw.lower(), None, False, False
        spec = get_component(name)
        if spec is None:
            m = _ALIAS.match(raw)
            if m and get_component(m.group("base")) is not None and int(m.group("k")) >= 2:
                name, label, explicit, alias = m.group("base").lower(), raw, True, True
                spec = get_component(name)
        if spec is None:
            close = difflib.get_close_matches(name, component_names(), n=1, cutoff=0.6)
            raise self.error(f"unknown component {raw!r}", t, close[0] if close else None)
        if self.tok.text == ":":
            colon = self.tok
            self.i += 1
            lt = self.tok
            if alias:
                raise self.error(f"{raw!r} already is a label; write '{name}:{lt.text}'", colon)
            if lt.kind != "name" or not _LABEL.match(lt.text):
                raise self.error(
                    f"expected a label after ':' (letters, digits, '_'), got {self.describe(lt)}",
                    lt,
                )
            self.i += 1
            label, explicit = lt.text, True
        return Comp(name, label or name, spec.kind, explicit, alias, t.line, t.col)

    def expect_close(self, open_tok: _Tok) -> None:
        if self.tok.text != ")":
            t = self.tok
            raise self.error(
                f"expected ')' to close the '(' at line {open_tok.line}, column {open_tok.col}, "
                f"got {self.describe(t)}",
                t,
            )
        self.i += 1


def _walk(node: object) -> list[Comp]:
    if isinstance(node, Comp):
        return [node]
    if isinstance(node, Conv):
        return [node.comp, *_walk(node.arg)]
    parts = node.terms if isinstance(node, Sum) else node.factors
    return [c for p in parts for c in _walk(p)]


def components_of(node: object) -> list[Comp]:
    """The component occurrences of a tree, left to right."""
    return _walk(node)


def _kind(node: object, err) -> str:
    """'additive' or 'multiplicative'; raise on invalid combinations."""
    if isinstance(node, Comp):
        return node.kind
    if isinstance(node, Conv):
        if _kind(node.arg, err) != "additive":
            raise err(f"convolution {node.comp.name!r} must act on an additive model", node.comp)
        return "additive"
    if isinstance(node, Sum):
        for t in node.terms:
            if _kind(t, err) != "additive":
                first = _walk(t)[0]
                raise err(
                    "only additive models can be added; this term is multiplicative "
                    f"(multiply it onto an additive component, e.g. '{first.name}*powerlaw')",
                    first,
                )
        return "additive"
    kinds = [_kind(f, err) for f in node.factors]
    n_add = kinds.count("additive")
    if n_add > 1:
        second = _walk(node.factors[[i for i, k in enumerate(kinds) if k == "additive"][1]])[0]
        raise err("two additive models cannot be multiplied; use '+' to add them", second)
    return "additive" if n_add else "multiplicative"


def _relabel(node: object, labels: dict[tuple[int, int], str]) -> object:
    if isinstance(node, Comp):
        return replace(node, label=labels[(node.line, node.col)])
    if isinstance(node, Conv):
        return Conv(_relabel(node.comp, labels), _relabel(node.arg, labels))
    if isinstance(node, Sum):
        return Sum(tuple(_relabel(t, labels) for t in node.terms))
    return Prod(tuple(_relabel(f, labels) for f in node.factors))


def parse_expression(text: str) -> object:
    """Parse ``text`` into a tree of :class:`Comp`, :class:`Sum`, :class:`Prod`, :class:`Conv`.

    Raises:
        ModelError: with line, column and the closest valid name.
    """
    if not isinstance(text, str):
        raise ModelError(f"a model expression must be a string, not {type(text).__name__}")
    parser = _Parser(text)
    tree = parser.parse()

    def err(msg: str, comp: Comp) -> ModelError:
        return ModelError(msg, line=comp.line, col=comp.col, source=text)

    if _kind(tree, err) != "additive":
        raise err(
            "the model has no additive component (multiplicative models need something to "
            "act on, e.g. 'tbabs*powerlaw')",
            _walk(tree)[0],
        )
    comps = _walk(tree)
    labels: dict[tuple[int, int], str] = {}
    taken: dict[str, Comp] = {}
    for c in comps:
        if c.explicit:
            if c.label in taken:
                raise err(f"label {c.label!r} is used twice", c)
            taken[c.label] = c
            labels[(c.line, c.col)] = c.label
    for c in comps:
        if not c.explicit:
            label, k = c.name, 1
            while label in taken:
                k += 1
                label = f"{c.name}_{k}"
            taken[label] = c
            labels[(c.line, c.col)] = label
    return _relabel(tree, labels)


def _comp_text(c: Comp) -> str:
    if c.alias:
        return c.label
    return f"{c.name}:{c.label}" if c.explicit and c.label != c.name else c.name


def to_text(node: object) -> str:
    """The canonical text of a tree (parses back to the same tree)."""
    if isinstance(node, Comp):
        return _comp_text(node)
    if isinstance(node, Conv):
        return f"{_comp_text(node.comp)}({to_text(node.arg)})"
    if isinstance(node, Sum):
        return " + ".join(to_text(t) for t in node.terms)
    return "*".join(f"({to_text(f)})" if isinstance(f, Sum) else to_text(f) for f in node.factors)
