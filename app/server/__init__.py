"""`cpmdesk serve`: an OpenAI-compatible HTTP API over one ChatEngine, on 127.0.0.1 with a bearer token."""
