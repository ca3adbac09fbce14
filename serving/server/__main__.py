"""`python -m serving.server`: see `serving.server.cli`."""
import sys

from serving.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
