"""`python -m serving.create_model` (INTERFACE.md): the entry point only; the command is `serving.registry.cli`."""
import sys

from serving.registry.cli import main

if __name__ == "__main__":
    sys.exit(main())
