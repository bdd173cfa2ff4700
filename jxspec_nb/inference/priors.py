"""Priors, fixed values and ties: the text of an ``%%xmodel`` cell -> :class:`ModelSpec`.

The text is the model expression on its first line, then one statement a line::

    tbabs*(powerlaw + bbodyrad)
    tbabs.nH ~ Uniform(0, 1)            # a prior
    powerlaw.PhoIndex ~ Uniform(0, 3)
    powerlaw.norm ~ LogUniform(1e-5, 1e-1)
    bbodyrad.kT = 2 * powerlaw.PhoIndex  # a tie (small arithmetic, never eval'd)
    bbodyrad.norm = 0.1                  # a fixed value

Joint fits: a parameter followed by ``[obs]`` (an observation's name or 0-based
index) is a separate parameter for that observation only; the other
observations share the plain one. Three per-observation instrument parameters
exist besides the model's: ``cross.factor[obs]`` (multiplies the predicted
counts), ``gain.slope[obs]`` and ``gain.offset[obs]`` (XSPEC's ``gain``:
the model is evaluated at ``E / slope - offset``). They default to 1, 1, 0.

>>> spec = model_with_priors('''
... tbabs*powerlaw
... tbabs.nH ~ Uniform(0, 1)
... powerlaw.PhoIndex ~ Uniform(0, 3)
... powerlaw.norm ~ LogUniform(1e-5, 1e-1)
... ''')                                                 # doctest: +SKIP
>>> spec.free_names                                     # doctest: +SKIP
('tbabs.nH', 'powerlaw.PhoIndex', 'powerlaw.norm')
"""

from __future__ import annotations

import ast
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError, PriorError
from ._distributions import KNOWN, PriorDef, prior_from_numpyro
from ._names import INSTRUMENT_PARAMS, closest, split_name
from ._ties import Tie, TieSyntaxError, dotted_name, parse_tie

__all__ = ["ModelSpec", "model_with_priors"]

# how many prior standard deviations a hard limit must be from a Normal prior's mean
NORMAL_SAFE_SD = 8.0


@dataclass(frozen=True)
class ModelSpec:
    """A spectral model with a prior, fixed value or tie for every parameter.

    Attributes:
        model: the :class:`~jxspec_nb.model.SpectralModel`.
        prior_defs: ``{name: PriorDef}`` of the free parameters, in sampling order.
        fixed: ``{name: value}`` (explicit ones and the model's frozen parameters).
        ties: ``{name: Tie}``.
        text: canonical text (re-parsed by :func:`model_with_priors` after loading).
    """

    model: Any
    prior_defs: Mapping[str, PriorDef]
    fixed: Mapping[str, float]
    ties: Mapping[str, Tie]
    text: str
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def priors(self) -> dict[str, Any]:
        """``{name: numpyro distribution}`` of the free parameters."""
        return {k: v.to_numpyro() for k, v in self.prior_defs.items()}

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names of the sampled parameters, in order."""
        return tuple(self.prior_defs)

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the problem for the compile cache."""
        return (str(self.model.expression), self.text)

    def per_observation(self) -> dict[str, set[str]]:
        """``{observation key: {base names}}`` of per-observation entries."""
        out: dict[str, set[str]] = {}
        for name in (*self.prior_defs, *self.fixed, *self.ties):
            base, obs = split_name(name)
            if obs is not None:
                out.setdefault(obs, set()).add(base)
        return out

    def __repr__(self) -> str:
        body = "\n".join("  " + line for line in self.text.splitlines())
        return f"ModelSpec({len(self.prior_defs)} free parameters)\n{body}"

    def _repr_html_(self) -> str:
        try:
            from ..results.display import spec_html
        except ImportError:
            return f"<pre>{html.escape(repr(self))}</pre>"
        return spec_html(self)


# ---------------------------------------------------------------- parsing
def _model_params(model: Any) -> dict[str, Any]:
    return {p.name: p for p in model.parameters}


def _limits(name: str, params: Mapping[str, Any]) -> tuple[float, float]:
    base, _ = split_name(name)
    if base in INSTRUMENT_PARAMS:
        return INSTRUMENT_PARAMS[base][1:]
    p = params[base]
    lo = -math.inf if p.lower is None else float(p.lower)
    hi = math.inf if p.upper is None else float(p.upper)
    return lo, hi


def _const(node: ast.AST, col0: int, lineno: int, source: str) -> float:
    """Evaluate a constant arithmetic expression (no names)."""
    try:
        tie = parse_tie(ast.unparse(node), frozenset())
        return float(tie.evaluate({}))
    except TieSyntaxError as exc:
        raise PriorError(f"expected a number: {exc}", line=lineno,
                         col=col0 + getattr(node, "col_offset", 0) + 1, source=source) from None


def _parse_dist(right: str, col0: int, lineno: int, source: str) -> PriorDef:
    try:
        node = ast.parse(right, mode="eval").body
    except SyntaxError as exc:
        raise PriorError(f"cannot parse the distribution: {exc.msg}", line=lineno,
                         col=col0 + (exc.offset or 1), source=source) from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise PriorError(f"expected a distribution call such as Uniform(0, 3), got {right!r}",
                         line=lineno, col=col0 + 1, source=source)
    kind = node.func.id
    if kind not in KNOWN:
        raise PriorError(f"unknown distribution {kind!r}; known: {', '.join(KNOWN)}",
                         line=lineno, col=col0 + 1, source=source,
                         suggestion=closest(kind, KNOWN))
    pos, kw = KNOWN[kind]
    values: dict[str, float] = {}
    allowed = (*pos, *kw)
    if len(node.args) > len(allowed):
        raise PriorError(f"{kind} takes at most {len(allowed)} arguments ({', '.join(allowed)})",
                         line=lineno, col=col0 + node.col_offset + 1, source=source)
    for name, arg in zip(allowed, node.args, strict=False):
        values[name] = _const(arg, col0, lineno, source)
    for k in node.keywords:
        if k.arg not in allowed or k.arg in values:
            raise PriorError(f"{kind} has no argument {k.arg!r} here; arguments: "
                             f"{', '.join(allowed)}", line=lineno,
                             col=col0 + k.value.col_offset + 1, source=source)
        values[k.arg] = _const(k.value, col0, lineno, source)
    missing = [p for p in pos if p not in values]
    if missing:
        raise PriorError(f"{kind} needs {', '.join(pos)}; missing {', '.join(missing)}",
                         line=lineno, col=col0 + 1, source=source)
    bounds = (values.get("low"), values.get("high")) if kind == "TruncatedNormal" else (None, None)
    prior = PriorDef(kind, tuple(values[p] for p in pos), *bounds)
    msg = prior.validate()
    if msg:
        raise PriorError(msg, line=lineno, col=col0 + 1, source=source)
    return prior


def _is_dist_text(text: str) -> bool:
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
        node.func.id[:1].isupper()


class _Builder:
    """Collects statements, checks them, then builds the :class:`ModelSpec`."""

    def __init__(self, model: Any, source: str) -> None:
        self.model = model
        self.params = _model_params(model)
        self.source = source
        self.priors: dict[str, PriorDef] = {}
        self.fixed: dict[str, float] = {}
        self.tie_text: dict[str, tuple[str, int]] = {}
        self.lines: dict[str, int] = {}

    def check_name(self, name: str, lineno: int | None, col: int) -> str:
        try:
            base, obs = split_name(name)
        except ValueError:
            raise PriorError(f"not a parameter name: {name.strip()!r}", line=lineno, col=col,
                             source=self.source) from None
        if base in INSTRUMENT_PARAMS and obs is None:
            raise PriorError(f"{base} is per observation: write {base}[name_or_index]",
                             line=lineno, col=col, source=self.source)
        if base not in self.params and base not in INSTRUMENT_PARAMS:
            known = list(self.params) + ([*INSTRUMENT_PARAMS] if obs else [])
            raise PriorError(f"unknown parameter {base!r}; parameters of "
                             f"{self.model.expression}: {', '.join(self.params)}",
                             line=lineno, col=col, source=self.source,
                             suggestion=closest(base, known))
        full = base if obs is None else f"{base}[{obs}]"
        if full in self.lines:
            where = self.lines[full]
            raise PriorError(f"{full} is defined twice" +
                             (f" (first on line {where})" if where else ""),
                             line=lineno, col=col, source=self.source)
        self.lines[full] = lineno or 0
        return full

    def add_prior(self, name: str, prior: PriorDef, lineno: int | None, col: int) -> None:
        lo, hi = _limits(name, self.params)
        plo, phi = prior.support
        if prior.kind == "Normal":
            # a Normal whose mean is >= 8 sd inside the limits puts < 1e-15 of its
            # mass outside them: accept it (e.g. gaussian.LineE ~ Normal(6.7, 0.01))
            loc, scale = prior.args
            plo = max(plo, loc - NORMAL_SAFE_SD * scale) if loc - NORMAL_SAFE_SD * scale >= lo \
                else plo
            phi = min(phi, loc + NORMAL_SAFE_SD * scale) if loc + NORMAL_SAFE_SD * scale <= hi \
                else phi
        if plo < lo - 1e-12 * abs(lo) or phi > hi + 1e-12 * abs(hi):
            raise PriorError(f"prior {prior.text()} of {name} reaches outside the parameter's "
                             f"hard limits [{lo:g}, {hi:g}]; restrict it (e.g. a Uniform or "
                             f"TruncatedNormal inside [{lo:g}, {hi:g}])",
                             line=lineno, col=col, source=self.source)
        self.priors[name] = prior

    def add_fixed(self, name: str, value: float, lineno: int | None, col: int) -> None:
        lo, hi = _limits(name, self.params)
        if not lo <= value <= hi:
            raise PriorError(f"{name} = {value:g} is outside the hard limits [{lo:g}, {hi:g}]",
                             line=lineno, col=col, source=self.source)
        self.fixed[name] = float(value)

    def statement(self, line: str, lineno: int) -> None:
        if "~" in line:
            left, right = line.split("~", 1)
            col_r = len(left) + 1 + (len(right) - len(right.lstrip()))
            name = self.check_name(left, lineno, len(left) - len(left.lstrip()) + 1)
            self.add_prior(name, _parse_dist(right.strip(), col_r, lineno, self.source),
                           lineno, col_r + 1)
            return
        if "=" in line:
            left, right = line.split("=", 1)
            col_r = len(left) + 1 + (len(right) - len(right.lstrip()))
            name = self.check_name(left, lineno, len(left) - len(left.lstrip()) + 1)
            self._value(name, right.strip(), lineno, col_r)
            return
        raise PriorError("expected 'name ~ Distribution(...)', 'name = value' or "
                         "'name = expression'", line=lineno, col=1, source=self.source)

    def _value(self, name: str, text: str, lineno: int | None, col_r: int) -> None:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise PriorError(f"cannot parse {text!r}: {exc.msg}", line=lineno,
                             col=col_r + (exc.offset or 1), source=self.source) from None
        has_names = any(dotted_name(n) is not None for n in ast.walk(node)
                        if isinstance(n, ast.Name | ast.Attribute))
        if has_names:
            self.tie_text[name] = (text, lineno or 0)
        else:
            self.add_fixed(name, _const(node, col_r, lineno or 0, self.source), lineno, col_r + 1)

    def python_entry(self, name: str, value: Any) -> None:
        full = self.check_name(name, None, 1)
        if isinstance(value, PriorDef):
            self.add_prior(full, value, None, 1)
        elif isinstance(value, bool):
            raise PriorError(f"{name}: a prior, a number or a tie expression is needed")
        elif isinstance(value, int | float):
            self.add_fixed(full, float(value), None, 1)
        elif isinstance(value, str):
            if _is_dist_text(value):
                self.add_prior(full, _parse_dist(value.strip(), 0, 0, value), None, 1)
            else:
                self._value(full, value.strip(), None, 0)
        else:
            prior = prior_from_numpyro(value)
            if prior is None:
                raise PriorError(f"{name}: unsupported prior {value!r}; use one of "
                                 f"{', '.join(KNOWN)}, a number or a tie expression")
            self.add_prior(full, prior, None, 1)

    def build(self, text_lines: list[str]) -> ModelSpec:
        known = frozenset(self.params) | frozenset(self.lines)
        ties: dict[str, Tie] = {}
        for name, (text, lineno) in self.tie_text.items():
            try:
                ties[name] = parse_tie(text, known - {name})
            except TieSyntaxError as exc:
                line_text = self.source.splitlines()[lineno - 1] if lineno else ""
                col = line_text.find(text) + 1 + exc.col if lineno else None
                raise PriorError(str(exc), line=lineno or None, col=col, source=self.source,
                                 suggestion=exc.suggestion) from None
        _check_cycles(ties, self.lines, self.source)
        fixed = dict(self.fixed)
        missing = []
        for name, p in self.params.items():
            if name in self.priors or name in fixed or name in ties:
                continue
            if getattr(p, "frozen", False):
                fixed[name] = float(p.default)
            else:
                missing.append(name)
        if missing:
            hint = "; ".join(f"{m} ~ Uniform(lo, hi)" for m in missing[:2])
            raise PriorError(f"free parameters without a prior: {', '.join(missing)}. Give each "
                             f"a prior ({hint}) or a value ({missing[0]} = value)")
        order = {n: i for i, n in enumerate(self.params)}

        def rank(name: str) -> tuple[int, int]:
            base, obs = split_name(name)
            return (0 if obs is None else 1, order.get(base, len(order)))

        priors = {k: self.priors[k] for k in sorted(self.priors, key=rank)}
        body = [str(self.model.expression)]
        body += [f"{k} ~ {v.text()}" for k, v in priors.items()]
        body += [f"{k} = {v!r}" for k, v in self.fixed.items()]
        body += [f"{k} = {v.text}" for k, v in ties.items()]
        return ModelSpec(self.model, priors, fixed, ties, "\n".join(body), dict(self.lines))


def _check_cycles(ties: Mapping[str, Tie], lines: Mapping[str, int], source: str) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2 or name not in ties:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name):], name])
            raise PriorError(f"circular ties: {cycle}", line=lines.get(name) or None, col=1,
                             source=source)
        state[name] = 1
        for dep in ties[name].depends:
            visit(dep, [*path, name])
        state[name] = 2

    for n in ties:
        visit(n, [])


def _parse_expression(line: str, lineno: int) -> Any:
    from ..model import parse_model

    try:
        return parse_model(line)
    except ModelError as exc:
        raise type(exc)(exc.reason, line=lineno, col=exc.col, source=line,
                        suggestion=exc.suggestion) from None


def model_with_priors(text_or_model: Any, priors: Mapping[str, Any] | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from ``%%xmodel`` text and/or a Python mapping.

    Args:
        text_or_model: the cell text (expression line, then statements), a model
            expression alone, or a :class:`~jxspec_nb.model.SpectralModel`
            (then ``text_or_model`` has no expression line). Text after ``#`` is
            a comment.
        priors: ``{name: prior}`` where a prior is a numpyro distribution
            (Uniform, LogUniform, Normal, TruncatedNormal, LogNormal, HalfNormal),
            a number (fixed), or a string: ``"Uniform(0, 3)"`` or a tie
            expression ``"2 * bbodyrad.kT"``.

    Returns:
        The spec; every free parameter has a prior.

    Raises:
        PriorError: naming the line and column of a wrong statement, unknown
            parameters (with the closest name), priors outside hard limits, and
            free parameters left without a prior.

    Example:
        >>> from numpyro.distributions import Uniform          # doctest: +SKIP
        >>> spec = model_with_priors("powerlaw", {"powerlaw.PhoIndex": Uniform(0, 3),
        ...                                       "powerlaw.norm": "LogUniform(1e-5, 1)"})
    """
    if isinstance(text_or_model, ModelSpec):
        text_or_model = text_or_model.text
    if isinstance(text_or_model, str):
        source = text_or_model
        raw = source.splitlines()
        model = None
        builder: _Builder | None = None
        for i, full_line in enumerate(raw, start=1):
            line = full_line.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            if model is None:
                model = _parse_expression(line.strip(), i)
                builder = _Builder(model, source)
                continue
            assert builder is not None
            builder.statement(line, i)
        if builder is None:
            raise PriorError("empty model text: the first line must be a model expression "
                             "such as tbabs*powerlaw", line=1, col=1, source=source)
    else:
        model, raw = text_or_model, []
        builder = _Builder(model, "")
    for name, value in (priors or {}).items():
        builder.python_entry(name, value)
    return builder.build(raw)
