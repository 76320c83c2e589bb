"""`python -m tagsmith.cli ...` runs the command line (tests and services use it)."""

from tagsmith.cli import main

main()
