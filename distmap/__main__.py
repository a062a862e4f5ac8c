import os
import sys

# `python -m distmap` puts the working directory first on sys.path: take it off, so that a
# csv.py (or yaml.py, ...) there cannot shadow what distmap imports later. Item functions are
# still loaded from the working directory (see distmap.imports).
if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from distmap.cli import main

sys.exit(main())
