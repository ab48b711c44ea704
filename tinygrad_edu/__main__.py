"""Entry point for `python -m tinygrad_edu`: hands over to the command line in tinygrad_edu.cli."""
from tinygrad_edu.cli import main

raise SystemExit(main())
