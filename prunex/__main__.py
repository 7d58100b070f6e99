"""`python -m prunex`: the prunex command."""

from prunex.cli.app import main

main()
