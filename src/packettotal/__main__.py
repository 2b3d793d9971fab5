"""`python -m packettotal ...`: the same as the `packettotal` script."""

from .cli import main

main()
