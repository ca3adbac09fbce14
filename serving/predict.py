"""`python -m serving.predict` (INTERFACE.md): the entry point only; the command is `serving.client.cli`."""
import sys

from serving.client.cli import main

if __name__ == "__main__":
    sys.exit(main())
