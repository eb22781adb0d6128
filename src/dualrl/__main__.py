"""`python -m dualrl` is the `dualrl` command."""

from dualrl.cli import main

raise SystemExit(main())
