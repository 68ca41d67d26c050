"""``python -m importer.simulator``: the ``simulate`` command without the importer's CLI."""

from importer.simulator.command import main

raise SystemExit(main())
