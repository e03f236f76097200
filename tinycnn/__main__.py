"""``python -m tinycnn ...`` -- see :mod:`tinycnn.cli`."""
import sys

from tinycnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
