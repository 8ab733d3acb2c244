"""`python -m app` is `cpmdesk`."""

from app.cli import main

raise SystemExit(main())
