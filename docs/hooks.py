"""MkDocs hooks: serve the figures of examples/ (the ones the scripts write)
at docs/examples/ without keeping a second copy in the repository, and
render the docstrings' Sphinx roles as plain code."""
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


def on_page_content(html, page, config, files):
    return LITERAL_BLOCK.sub(":</p>", ROLE.sub("<code>", html))
