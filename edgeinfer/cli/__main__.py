"""`python -m edgeinfer.cli` runs the command line."""
from edgeinfer.cli import main

main()
