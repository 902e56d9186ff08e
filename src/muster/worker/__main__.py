"""``python -m muster.worker``."""

from muster.worker.main import main

raise SystemExit(main())
