"""Documents: index the user's own files on this machine and answer questions from them with citations.

No Qt here: the GUI, the CLI and the tests drive the same modules.
"""
