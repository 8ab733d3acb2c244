"""Reports from the user's documents (issue 24): plan an outline, retrieve per section, write each section with
`[n]` citations bound to passages, check every cited sentence with the citations' support check, assemble and export.
Qt-free except export.py's PDF (QTextDocument + QPdfWriter); never imports app.gui."""
