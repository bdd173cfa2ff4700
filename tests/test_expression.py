"""The model language: round trips, labels, and located errors."""

import pytest

from jxspec_nb.errors import ModelError
from jxspec_nb.model import parse_model
from jxspec_nb.model.expression import Conv, Prod, Sum, parse_expression, to_text

NINE = "vbroad(" + " + ".join(["gaussian"] * 9) + ")"


@pytest.mark.parametrize(
    "text",
    [
        "tbabs*(powerlaw + bbodyrad)",
        "constant*tbabs*(diskbb + cutoffpl) + gaussian",
        NINE,
        "tbabs*cflux(powerlaw + bbodyrad)",
        "gsmooth(gaussian:fe_w + gaussian:fe_z) + powerlaw",
        "ztbabs*zashift(vbroad(zgauss + zgauss) + constadd)",
    ],
)
def test_round_trip(text):
    model = parse_model(text)
    assert model.expression == text
    again = parse_model(model.expression)
    assert again.expression == text
    assert again.param_names == model.param_names


def test_whitespace_case_and_abbreviated_forms_are_canonicalised():
    assert parse_model(" TBabs * ( powerlaw+bbodyrad ) ").expression == (
        "tbabs*(powerlaw + bbodyrad)"
    )
    # XSPEC's "mult(expr)" and a bare convolution in a product
    assert parse_model("phabs(powerlaw)").expression == "phabs*powerlaw"
    assert parse_model("tbabs*cflux*powerlaw").expression == "tbabs*cflux(powerlaw)"
    assert parse_model("((powerlaw))").expression == "powerlaw"
    assert parse_model("(powerlaw + bbody) + gaussian").expression == (
        "powerlaw + bbody + gaussian"
    )
    assert parse_model("tbabs*\n  (powerlaw +\n   bbodyrad)").expression == (
        "tbabs*(powerlaw + bbodyrad)"
    )


def test_repeated_components_and_labels():
    model = parse_model(NINE)
    labels = model.components
    assert labels == ("vbroad", "gaussian", *[f"gaussian_{k}" for k in range(2, 10)])
    assert "gaussian_9.LineE" in model.param_names
    assert len(model.param_names) == 1 + 9 * 3
    model = parse_model("gaussian + gaussian:fe_w + gaussian")
    assert model.components == ("gaussian", "fe_w", "gaussian_2")
    assert "fe_w.LineE" in model.param_names
    # explicit "gaussian_3" names the third one; auto labels skip taken names
    model = parse_model("gaussian_2 + gaussian + gaussian")
    assert model.components == ("gaussian_2", "gaussian", "gaussian_3")


def test_tree_structure():
    tree = parse_expression("constant*tbabs*(diskbb + cutoffpl) + gaussian")
    assert isinstance(tree, Sum) and len(tree.terms) == 2
    prod = tree.terms[0]
    assert isinstance(prod, Prod)
    assert [getattr(f, "name", None) for f in prod.factors[:2]] == ["constant", "tbabs"]
    assert isinstance(prod.factors[2], Sum)
    conv = parse_expression("tbabs*cflux*powerlaw").factors[1]
    assert isinstance(conv, Conv) and conv.comp.name == "cflux"
    assert to_text(tree) == "constant*tbabs*(diskbb + cutoffpl) + gaussian"


# (text, line, column, fragment of the message, suggestion)
BAD = [
    ("", 1, 1, "empty model expression", None),
    ("tbabs*(powerlaw + bbodyrd)", 1, 19, "unknown component 'bbodyrd'", "bbodyrad"),
    ("tbabs*powrlaw", 1, 7, "unknown component 'powrlaw'", "powerlaw"),
    ("tbabs*(powerlaw + )", 1, 19, "expected a component name, got ')'", None),
    ("tbabs*(powerlaw", 1, 16, "expected ')' to close the '(' at line 1, column 7", None),
    ("powerlaw)", 1, 9, "unmatched ')'", None),
    ("powerlaw bbodyrad", 1, 10, "expected '+', '*' or the end", None),
    ("powerlaw +", 1, 11, "got the end of the expression", None),
    ("tbabs", 1, 1, "no additive component", None),
    ("powerlaw*bbodyrad", 1, 10, "two additive models cannot be multiplied", None),
    ("tbabs + powerlaw", 1, 1, "only additive models can be added", None),
    ("powerlaw(tbabs)", 1, 9, "additive component 'powerlaw' cannot be applied", None),
    ("tbabs*cflux", 1, 7, "convolution 'cflux' needs a model", None),
    ("cflux(tbabs)", 1, 1, "must act on an additive model", None),
    ("gaussian:fe_w + gaussian:fe_w", 1, 17, "label 'fe_w' is used twice", None),
    ("gaussian: + powerlaw", 1, 11, "expected a label after ':'", None),
    ("2*powerlaw", 1, 1, "numbers are not components", None),
    ("powerlaw - bbodyrad", 1, 10, "unexpected character '-'", None),
    ("tbabs*(powerlaw +\n bbodyrd)", 2, 2, "unknown component 'bbodyrd'", "bbodyrad"),
    ("tbabs*(powerlaw +\n  gaussian", 2, 11, "expected ')'", None),
    ("gsmoth(gaussian)", 1, 1, "unknown component 'gsmoth'", "gsmooth"),
]


@pytest.mark.parametrize("text,line,col,fragment,suggestion", BAD)
def test_bad_expressions_are_located(text, line, col, fragment, suggestion):
    with pytest.raises(ModelError) as info:
        parse_model(text)
    err = info.value
    assert fragment in str(err)
    assert (err.line, err.col) == (line, col), str(err)
    assert err.suggestion == suggestion
    assert str(err).startswith(f"line {line}, column {col}: ")
    if text:
        pointer = err.pointer().splitlines()
        assert pointer[1] == " " * (col - 1) + "^"


def test_non_string_is_rejected():
    with pytest.raises(ModelError, match="must be a string"):
        parse_model(42)
