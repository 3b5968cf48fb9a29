"""`python -m app.cli`: the `toolqueue` command."""

from app.cli import main

main()
