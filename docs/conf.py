"""Sphinx configuration of the jxspec_nb documentation.

Build (offline, warnings as errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Two things are generated at build time so that they cannot drift from the code
(see ``_ext/jxspec_docs.py``): the component reference page, from the model
registry, and copies of the tutorials of ``notebooks/``, which myst-nb executes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(REPO))

# the notebooks executed at build time inherit this environment
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JXSPEC_SHARED_DATA", str(REPO.parent / "shared" / "data"))

import jxspec_docs  # noqa: E402  (docs/_ext)

jxspec_docs.copy_tutorials(REPO / "notebooks", DOCS / "tutorials")

# -- project -------------------------------------------------------------------
project = "jxspec_nb"
author = "jxspec_nb developers"
copyright = "2025, jxspec_nb developers"
try:
    from jxspec_nb import __version__ as release
except ImportError:  # pragma: no cover
    release = "0.1.0"
version = release

# -- extensions ----------------------------------------------------------------
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "jxspec_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = [
    "_build",
    "_generated",
    "jupyter_execute",
    "**.ipynb_checkpoints",
    ".gitignore",
]
templates_path: list[str] = []

myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist", "attrs_inline"]
myst_heading_anchors = 3

# notebooks and MyST code-cells run at every build; an error fails the build
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600
nb_merge_streams = True

# Google-style docstrings
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # Attributes: -> :ivar: fields (no duplicate objects with autodoc)
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_mock_imports: list[str] = []

# offline: no intersphinx, nothing fetched at build time
html_theme = "sphinx_book_theme"
html_title = f"jxspec_nb {release}"
html_static_path = ["_static"]
html_css_files = ["jxspec.css"]
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": True,
}
html_last_updated_fmt = None
