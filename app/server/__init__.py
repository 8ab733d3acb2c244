"""`cpmdesk serve`: an OpenAI-compatible HTTP API over one ChatEngine, on 127.0.0.1 with a bearer token."""

# How often streamed text goes out at most: 40 ms is 25 updates a second, a few words each, as smooth as reading
# needs. The fastest model here makes a token every ~8 ms, so it streams 4-5 tokens a chunk: each chunk costs the
# server and its client work on the CPU the inference threads use (bench/RESULTS.md, "API overhead": 20 ms cost
# decode 4-5 %, 40 ms 1-2 %). The first text and the end go at once. 0: every token on its own.
STREAM_INTERVAL_S = 0.04
