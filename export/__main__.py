"""`python -m export …` is `cpmdesk-export …`."""

from export.cli import main

raise SystemExit(main())
