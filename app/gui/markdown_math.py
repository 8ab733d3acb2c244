"""Math in Markdown: `$…$` and `\\(…\\)` inline, `$$…$$` and `\\[…\\]` as display, parsed as markdown-it tokens
(`math_inline`; `math_display` inside a paragraph; `math_block` on lines of its own) so emphasis, escapes and code
never touch a formula and formulas never touch code (code spans and fences are parsed by their own rules first)."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline

_INLINE_DELIMITERS = (("$$", "$$", "math_display"), ("\\[", "\\]", "math_display"), ("\\(", "\\)", "math_inline"),
                      ("$", "$", "math_inline"))
_BLOCK_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"))


def math_plugin(md: MarkdownIt) -> None:
    """Add the math rules to `md` (before the escape rule, so `\\(` is not read as an escaped parenthesis)."""
    md.inline.ruler.before("escape", "math_inline", _inline_math)
    md.block.ruler.before("paragraph", "math_block", _block_math, {"alt": ["paragraph", "reference", "blockquote"]})


def _inline_math(state: StateInline, silent: bool) -> bool:
    src, start = state.src, state.pos
    for opening, closing, kind in _INLINE_DELIMITERS:
        if not src.startswith(opening, start):
            continue
        end = _closing(src, start + len(opening), state.posMax, closing, dollar=opening == "$")
        if end < 0:
            continue
        tex = src[start + len(opening):end]
        if not tex.strip():
            continue
        if not silent:
            token = state.push(kind, "math", 0)
            token.content = tex.strip()
            token.markup = opening
        state.pos = end + len(closing)
        return True
    return False


def _closing(src: str, begin: int, limit: int, closing: str, dollar: bool) -> int:
    """Where `closing` ends the formula starting at `begin` (-1: none). A single `$` follows Pandoc's rule so prices
    stay text: no space after the opening, none before the closing, and no digit right after it."""
    if dollar and (begin >= limit or src[begin].isspace()):
        return -1
    position = begin
    while True:
        end = src.find(closing, position, limit)
        if end < 0:
            return -1
        if src[end - 1] == "\\":  # \$ inside a formula
            position = end + 1
            continue
        if dollar and (src[end - 1].isspace() or (end + 1 < limit and src[end + 1].isdigit())):
            position = end + 1
            continue
        return end


def _block_math(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    begin = state.bMarks[start_line] + state.tShift[start_line]
    if state.sCount[start_line] - state.blkIndent >= 4:  # an indented code block
        return False
    first = state.src[begin:state.eMarks[start_line]]
    for opening, closing in _BLOCK_DELIMITERS:
        if not first.startswith(opening):
            continue
        rest = first[len(opening):]
        line = start_line
        if closing in rest:  # one line: $$ x $$ (and nothing after it)
            tex, _, after = rest.partition(closing)
            if after.strip():
                return False
        else:
            lines = [rest]
            while True:
                line += 1
                if line >= end_line:
                    return False  # never closed (yet, while streaming): left as text
                text = state.src[state.bMarks[line] + state.tShift[line]:state.eMarks[line]]
                if closing in text:
                    before, _, after = text.partition(closing)
                    if after.strip():
                        return False
                    lines.append(before)
                    break
                lines.append(text)
            tex = "\n".join(lines)
        if not tex.strip():
            return False
        if silent:
            return True
        token = state.push("math_block", "math", 0)
        token.block = True
        token.content = tex.strip()
        token.markup = opening
        token.map = [start_line, line + 1]
        state.line = line + 1
        return True
    return False
