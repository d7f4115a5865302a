"""``python -m neurodyn``: the same as the ``neurodyn`` command."""

from .cli import main

raise SystemExit(main())
