"""The user's models without Qt: the catalogue of downloadable models, hub downloads into the data folder,
conversion in a child process, the library (list, add, remove) and draft pairing. The window and
`cpmdesk models …` both use it."""
