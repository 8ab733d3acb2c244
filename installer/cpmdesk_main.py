"""The bundle's entry point: the same `cpmdesk` command as the pip install (window, or `ask` / `chat`)."""

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
