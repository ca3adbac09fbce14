"""`python -m serving.batch_predict` (INTERFACE.md): the entry point only; the command is `serving.batch.cli`."""
import sys

from serving.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
