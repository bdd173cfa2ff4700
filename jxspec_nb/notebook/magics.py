"""IPython magics: thin calls of the public API, results bound to names you choose.

``%load_ext jxspec_nb`` registers:

``%xdata NAME = PATH [--band LO HI] [--bkg P] [--rmf P] [--arf P] [--group G] [--row N]``
    :func:`jxspec_nb.data.load_observation` (``PATH`` may be ``dataset:NAME`` for a
    packaged dataset); binds the Observation to ``NAME`` and returns it.
``%%xmodel NAME``
    :func:`jxspec_nb.inference.model_with_priors` on the cell text; binds and
    returns the model specification.
``%xfit MODEL OBS[,OBS...] [--method M] [--chains N] [--warmup N] [--samples N]
[--steps N] [--seed N] [--stat S] [--background B] [--init NAME] [--option KEY=VALUE]
[-o NAME] [--quiet]``
    :func:`jxspec_nb.inference.fit` with a live progress widget; binds the
    FitResult to ``NAME`` (default ``MODEL_fit``) and returns it.
``%xsim NAME = SOURCE OBS [--set PARAM=VALUE] [--scale F] [--seed N] [--no-background]``
    :func:`jxspec_nb.data.fakeit` of a model (a FitResult's best fit, a model
    specification or a SpectralModel) through an observation's response.
``%xplot RESULT [ppc|corner|trace|elbo] [--obs I] [--x energy|channel]
[--yscale log|linear] [--rebin N]``
    :mod:`jxspec_nb.results.plots`; returns the Figure.

Every user mistake (a :class:`~jxspec_nb.errors.JxspecError`, a missing name, a
bad option) surfaces as a one-line ``UsageError``; bugs keep their traceback.

Example (in a notebook cell)::

    %load_ext jxspec_nb
    %xdata ulx4 = dataset:ngc7793_ulx4 --band 0.5 10
"""

from __future__ import annotations

import ast
import contextlib
import keyword
from collections.abc import Iterator
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..errors import JxspecError

__all__ = ["JxspecMagics", "load_ipython_extension"]

METHODS = ("nuts", "aies", "ns", "vi", "mle")
PLOTS = ("ppc", "corner", "trace", "elbo")


@contextlib.contextmanager
def user_errors(prefix: str) -> Iterator[None]:
    """Turn a :class:`JxspecError` (and unreadable files) into a one-line UsageError."""
    try:
        yield
    except JxspecError as err:
        raise UsageError(f"{prefix}: {_one_line(str(err))}") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise UsageError(f"{prefix}: cannot read {err.filename!s}: {err.strerror}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _split_assignment(tokens: list[str], magic: str, usage: str) -> tuple[str, str]:
    """``['a', '=', 'b c']`` or ``['a=b']`` -> ``('a', 'b c')``."""
    text = " ".join(tokens)
    if "=" not in text:
        raise UsageError(f"%{magic}: expected '{usage}', got {text!r}")
    name, _, value = text.partition("=")
    name, value = name.strip(), _unquote(value)
    _check_name(name, magic)
    if not value:
        raise UsageError(f"%{magic}: nothing after '=' in {text!r}; expected '{usage}'")
    return name, value


def _unquote(text: str) -> str:
    """``'a b.pha'`` or ``"a b.pha"`` -> ``a b.pha`` (IPython's splitter keeps the quotes)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _check_name(name: str, magic: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"%{magic}: {name!r} is not a valid Python name to bind the result to")


def _none_or(value: str | None) -> Any:
    """Option value for rmf/arf/bkg: absent -> 'header', 'none' -> None, else a path."""
    if value is None:
        return "header"
    value = _unquote(value)
    return None if value.lower() == "none" else value


def _parse_assignments(items: list[str] | None, magic: str, flag: str) -> dict[str, Any]:
    """``['a.b=1', 'c=x']`` -> ``{'a.b': 1, 'c': 'x'}`` (literal values, never eval)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"%{magic}: {flag} expects KEY=VALUE, got {item!r}")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        out[key.strip()] = value
    return out


class _Silent:
    """A progress reporter that reports nothing (``%xfit --quiet``)."""

    def start(self, **kwargs: Any) -> None:
        pass

    def update(self, **kwargs: Any) -> None:
        pass

    def finish(self, **kwargs: Any) -> None:
        pass


@magics_class
class JxspecMagics(Magics):
    """The jxspec_nb magics (see the module docstring)."""

    # -- helpers -------------------------------------------------------------------
    def _lookup(self, name: str, magic: str, what: str, hint: str) -> Any:
        ns = self.shell.user_ns
        if name not in ns:
            raise UsageError(f"%{magic}: no {what} named {name!r}; {hint}")
        return ns[name]

    def _observations(self, text: str, magic: str) -> list[Any]:
        from ..data import Observation

        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise UsageError(f"%{magic}: name at least one observation (OBS or OBS1,OBS2)")
        out: list[Any] = []
        for name in names:
            value = self._lookup(name, magic, "observation",
                                 f"load one with %xdata {name} = PATH")
            items = list(value) if isinstance(value, list | tuple) else [value]
            for item in items:
                if not isinstance(item, Observation):
                    raise UsageError(
                        f"%{magic}: {name!r} is a {type(item).__name__}, not an Observation; "
                        f"load one with %xdata {name} = PATH"
                    )
            out.extend(items)
        return out

    # -- %xdata ------------------------------------------------------------------------
    @magic_arguments()
    @argument("assignment", nargs="+", help="NAME = PATH (PATH may be dataset:ngc7793_ulx4)")
    @argument("--band", nargs=2, type=float, metavar=("LO", "HI"), help="energy band in keV")
    @argument("--bkg", help="background spectrum, or 'none' (default: BACKFILE)")
    @argument("--rmf", help="redistribution matrix, or 'none' (default: RESPFILE)")
    @argument("--arf", help="ancillary response, or 'none' (default: ANCRFILE)")
    @argument("--group", help="'none', 'min:20' or 'optimal' (default: the file's GROUPING)")
    @argument("--row", type=int, help="row of a PHA type II file (0-based)")
    @line_magic
    def xdata(self, line: str) -> Any:
        """Load a spectrum with its responses and background: ``%xdata NAME = PATH``."""
        args = parse_argstring(self.xdata, line)
        name, path = _split_assignment(args.assignment, "xdata", "NAME = PATH")
        kwargs: dict[str, Any] = {"name": name}
        for key in ("rmf", "arf", "bkg"):
            if getattr(args, key) is not None:
                kwargs[key] = _none_or(getattr(args, key))
        if args.band is not None:
            lo, hi = args.band
            if not lo < hi:
                raise UsageError(f"%xdata: --band needs LO < HI, got {lo:g} {hi:g}")
            kwargs["band"] = (lo, hi)
        if args.group is not None:
            kwargs["group"] = args.group
        if args.row is not None:
            kwargs["row"] = args.row
        with user_errors(f"%xdata {name}"):
            from ..data import load_observation

            if path.startswith("dataset:"):
                from .. import datasets

                files = datasets.files(path.split(":", 1)[1])
                defaults = {"band": files.band, "rmf": files.rmf, "arf": files.arf,
                            "bkg": files.background}
                obs = load_observation(files.spectrum, **{**defaults, **kwargs})
            else:
                obs = load_observation(path, **kwargs)
        self.shell.user_ns[name] = obs
        return obs

    # -- %%xmodel ------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", help="Python name to bind the model specification to")
    @cell_magic
    def xmodel(self, line: str, cell: str) -> Any:
        """Model expression, then one prior / fixed value / tie per line (``#`` comments).

        Example::

            %%xmodel m
            tbabs*(powerlaw + bbodyrad)
            tbabs.nH ~ Uniform(0, 1)
            powerlaw.PhoIndex ~ Uniform(0, 3)
        """
        args = parse_argstring(self.xmodel, line)
        _check_name(args.name, "xmodel")
        if not cell.strip():
            raise UsageError(f"%%xmodel {args.name}: the cell is empty; write a model expression "
                             "such as 'tbabs*powerlaw' on its first line")
        from ..inference import model_with_priors

        with user_errors(f"%%xmodel {args.name}"):
            spec = model_with_priors(cell)
        self.shell.user_ns[args.name] = spec
        return spec

    # -- %xfit ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("model", help="name of a %%xmodel specification")
    @argument("observations", nargs="+", help="observation name(s), comma-separated")
    @argument("--method", choices=METHODS, default="nuts", help="inference method")
    @argument("--chains", type=int, help="chains (NUTS) or walkers (AIES)")
    @argument("--warmup", type=int, help="warm-up steps per chain")
    @argument("--samples", type=int, help="kept samples per chain")
    @argument("--steps", type=int, help="optimiser / VI steps")
    @argument("--seed", type=int, help="random seed")
    @argument("--stat", help="fit statistic: cstat (default), wstat, chi2 or chi2_model")
    @argument("--background", choices=("auto", "wstat", "bayesian", "subtract", "ignore"),
              help="how the background enters the likelihood (default auto)")
    @argument("--init", metavar="NAME", help="name of a dict of starting values, e.g. "
              "from jxspec_nb.highres.perseus_init")
    @argument("--option", "-O", action="append", metavar="KEY=VALUE",
              help="extra keyword for the method (repeatable), e.g. -O target_accept_prob=0.9")
    @argument("-o", "--output", help="name for the result (default: MODEL_fit)")
    @argument("--quiet", "-q", action="store_true", help="no progress display")
    @line_magic
    def xfit(self, line: str) -> Any:
        """Fit a model to observations: ``%xfit MODEL OBS[,OBS...] [--method nuts]``."""
        args = parse_argstring(self.xfit, line)
        out = args.output or f"{args.model}_fit"
        _check_name(out, "xfit")
        spec = self._lookup(args.model, "xfit", "model",
                            f"define it in a cell starting with %%xmodel {args.model}")
        observations = self._observations(" ".join(args.observations), "xfit")
        options = _parse_assignments(args.option, "xfit", "--option")
        kwargs: dict[str, Any] = dict(options)
        for key in ("chains", "warmup", "samples", "steps", "seed", "stat", "background"):
            value = getattr(args, key)
            if value is not None:
                if key in ("chains", "samples", "steps") and value <= 0:
                    raise UsageError(f"%xfit: --{key} must be a positive integer, got {value}")
                kwargs[key] = value
        if args.init is not None:
            init = self._lookup(args.init, "xfit", "dict of starting values",
                                f"e.g. {args.init} = {{'powerlaw.PhoIndex': 2.0}}")
            if not isinstance(init, dict):
                raise UsageError(f"%xfit: --init {args.init} is a {type(init).__name__}, "
                                 "not a dict of parameter values")
            kwargs["init"] = init
        from ..inference import fit
        from .widgets import auto_progress

        progress = _Silent() if args.quiet else auto_progress()
        if hasattr(progress, "prepare"):
            progress.prepare(args.method)  # on screen while the model compiles
        obs_arg = observations[0] if len(observations) == 1 else observations
        with user_errors(f"%xfit {args.model}"):
            try:
                result = fit(spec, obs_arg, method=args.method, progress=progress, **kwargs)
            except KeyboardInterrupt:  # before sampling began (the fit keeps later draws)
                if getattr(progress, "status", "") in ("preparing", "running"):
                    progress.finish(interrupted=True)
                raise
            except Exception as err:
                if getattr(progress, "status", "") in ("preparing", "running"):
                    progress.abort(f"failed: {_one_line(str(err))[:200]}")
                unknown = [k for k in options if f"keyword argument '{k}'" in str(err)]
                if isinstance(err, TypeError) and unknown:  # a mistyped -O KEY
                    raise UsageError(f"%xfit: method {args.method!r} has no option "
                                     f"{unknown[0]!r} (given with -O)") from None
                raise
        self.shell.user_ns[out] = result
        return result

    # -- %xsim ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("assignment", nargs="+", help="NAME = SOURCE OBS")
    @argument("--set", action="append", metavar="PARAM=VALUE", dest="values",
              help="parameter value (repeatable), e.g. --set powerlaw.norm=1e-3")
    @argument("--scale", type=float, default=1.0, help="multiply the photon flux (cross-norm.)")
    @argument("--seed", type=int, default=0, help="random seed of the Poisson draws")
    @argument("--no-background", action="store_true", help="do not redraw the background")
    @line_magic
    def xsim(self, line: str) -> Any:
        """Simulate a spectrum (fakeit): ``%xsim NAME = SOURCE OBS [--set P=V]``.

        SOURCE is a FitResult (its best fit), a model specification (fixed values,
        then the model defaults) or a SpectralModel; ``--set`` overrides values.
        """
        args = parse_argstring(self.xsim, line)
        name, rest = _split_assignment(args.assignment, "xsim", "NAME = SOURCE OBS")
        parts = rest.split()
        if len(parts) != 2:
            raise UsageError(f"%xsim: expected 'NAME = SOURCE OBS', got {rest!r}")
        source = self._lookup(parts[0], "xsim", "model or fit result",
                              f"define it with %%xmodel {parts[0]}")
        (obs,) = self._observations(parts[1], "xsim")[:1]
        values = _parse_assignments(args.values, "xsim", "--set")
        from ..data import fakeit
        from ._simulate import source_model_and_params

        with user_errors(f"%xsim {name}"):
            model, params = source_model_and_params(source, values)
            import numpy as np

            flux = np.asarray(model.evaluate(params, obs.e_lo, obs.e_hi)) * args.scale
            sim = fakeit(obs, flux, seed=args.seed, background=not args.no_background)
        if getattr(sim, "name", None) != name:
            with contextlib.suppress(Exception):
                import dataclasses

                sim = dataclasses.replace(sim, name=name)
        self.shell.user_ns[name] = sim
        return sim

    # -- %xplot --------------------------------------------------------------------------
    @magic_arguments()
    @argument("result", help="name of a FitResult")
    @argument("kind", nargs="?", default="ppc", choices=PLOTS, help="which plot (default ppc)")
    @argument("--obs", type=int, default=0, help="observation index for ppc")
    @argument("--x", choices=("energy", "channel"), default="energy", help="ppc x axis")
    @argument("--yscale", choices=("log", "linear"), default="log", help="ppc y scale")
    @argument("--rebin", type=float, help="ppc: merge bins to this many sigma (display only)")
    @line_magic
    def xplot(self, line: str) -> Any:
        """Plot a fit result: ``%xplot RESULT [ppc|corner|trace|elbo]``."""
        args = parse_argstring(self.xplot, line)
        result = self._lookup(args.result, "xplot", "fit result",
                              f"run a fit first, e.g. %xfit MODEL OBS -o {args.result}")
        from ..results.result import FitResult

        if not isinstance(result, FitResult):
            raise UsageError(f"%xplot: {args.result!r} is a {type(result).__name__}, "
                             "not a FitResult")
        from ..results import plots

        with user_errors(f"%xplot {args.result}"):
            if args.kind == "ppc":
                return plots.plot_ppc(result, obs_index=args.obs, x=args.x,
                                      yscale=args.yscale, rebin=args.rebin)
            return getattr(plots, f"plot_{args.kind}")(result)


def load_ipython_extension(ipython: Any) -> None:
    """Register :class:`JxspecMagics` (``%load_ext jxspec_nb``)."""
    ipython.register_magics(JxspecMagics)
