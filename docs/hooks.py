"""MkDocs hooks: serve the figures of examples/ (the ones the scripts write)
at docs/examples/ without keeping a second copy in the repository, and
render the docstrings' Sphinx roles as plain code, and show a default held
in fastbp.datasets' _Default (a default that knows it was not given) as its
value."""
import re
from pathlib import Path

from mkdocs.structure.files import File

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def on_files(files, config):
    for png in sorted(EXAMPLES.glob("*.png")):
        files.append(File.generated(config, f"examples/{png.name}", abs_src_path=str(png)))
    return files


# Docstrings use Sphinx's roles (:func:`line`, :class:`fastbp.SGD`), which
# mkdocstrings does not read: each printed as text before its name
# (":mod:fastbp.network", 119 times). The name is kept, in code font, and a
# reST "::" before a code block reads as the ":" it stands for.

ROLE = re.compile(r":(?:py:)?(?:func|mod|class|meth|attr|data|exc|obj|const):<code>~?")
LITERAL_BLOCK = re.compile(r"::</p>")


# mkdocstrings prints a default as its source text: fastbp.datasets'
# train_test_split showed test_fraction=_Default(0.25), a private class; the
# value alone is shown, in the signature (highlighted) and in the table of
# parameters.
DEFAULT_SIGNATURE = re.compile(r'<span class="n">_Default</span><span class="p">\(</span>'
                               r'(<span class="\w+">[^<]*</span>)<span class="p">\)')
DEFAULT_TABLE = re.compile(r'<autoref identifier="[\w.]*\._Default"[^>]*>_Default</autoref>'
                           r'\(([^()<]*)\)')   # (a cross-reference, for mkdocs-autorefs)


# griffe reads a docstring's type as a Python annotation: the choices
# {"float32", "float64"} showed as (float32, float64), a tuple of names, and
# dict or "balanced" as dict or balanced, ndarray, (n_params,) as a tuple. A
# type holding quotes, braces, commas or parentheses is shown as the
# docstring writes it. (griffe's internals: left as they are
# where they differ.)
def _keep_written_types():
    try:
        from griffe._internal.docstrings import numpy as numpy_style
        parse = numpy_style.parse_docstring_annotation
    except (ImportError, AttributeError):
        return

    def parse_unless_written(annotation, docstring, *args, **kwargs):
        if any(c in annotation for c in "\"'{,("):
            return annotation
        return parse(annotation, docstring, *args, **kwargs)
    if getattr(parse, "__name__", "") != "parse_unless_written":
        numpy_style.parse_docstring_annotation = parse_unless_written


def on_config(config):
    _keep_written_types()
    return config


def on_page_content(html, page, config, files):
    html = DEFAULT_TABLE.sub(r"\1", DEFAULT_SIGNATURE.sub(r'\1<span class="p">', html))
    return LITERAL_BLOCK.sub(":</p>", ROLE.sub("<code>", html))
