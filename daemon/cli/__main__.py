"""``python -m interlock.cli``: the same entry point as the ``interlock`` script."""

from interlock.cli.main import main

raise SystemExit(main())
