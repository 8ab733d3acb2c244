"""`cpmdesk serve`: an OpenAI-compatible HTTP API over one ChatEngine, on 127.0.0.1 with a bearer token."""

# How often streamed text goes out at most: 20 ms is 50 updates a second, more than a reader or a screen needs.
# The fastest model here makes a token every ~8 ms, so it streams about 3 tokens a chunk: fewer chunks are less
# work for the server and its client, which share the CPU with the inference threads. 0: every token at once.
STREAM_INTERVAL_S = 0.02
