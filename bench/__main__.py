"""python -m bench -> bench.cli.main()."""

from bench.cli import main

main()
