"""``python -m fastbp ...``: the ``fastbp`` command line."""
import sys

from .cli import main

sys.exit(main())
