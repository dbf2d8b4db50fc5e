"""`python -m moorage` runs the command line."""

from moorage.cli import main

main()
