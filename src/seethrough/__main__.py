"""``python -m seethrough``: the CLI (so that ``torchrun -m seethrough train ...`` works)."""

from .cli.app import main

main()
