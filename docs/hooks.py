"""MkDocs hook: serve the figures of examples/ (the ones the scripts write)
at docs/examples/ without keeping a second copy in the repository."""
from pathlib import Path

from mkdocs.structure.files import File

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def on_files(files, config):
    for png in sorted(EXAMPLES.glob("*.png")):
        files.append(File.generated(config, f"examples/{png.name}", abs_src_path=str(png)))
    return files
