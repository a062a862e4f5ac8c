import sys

from distmap.cli import main

sys.exit(main())
