import sys

from .cli import main

if __name__ == "__main__":  # a process pool started with "spawn" imports this module again
    sys.exit(main())
