"""What a sentence states, in the terms citations are checked in: its facts (numbers with their role, names) and
its content words. Qt-free text analysis, shared by the answer's sentences and the sources' sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass

SENTENCE_END = re.compile(r"(?<!\b[A-Z][a-z]\.)(?<!\b[A-Z]\.)(?<=[.!?])\s+|\n+")
MARKER = re.compile(r"\[(\d+(?:\s*[-–,;]\s*\d+)*)\]")  # [1], [1, 2], [1;2], [1-3]
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)
_TOKEN = re.compile(r"[€$£]|\d+(?:[.,:/-]\d+)*%?|[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
COMMON = frozenset("""the a an and or of to in on at is are was were be been being for with by from as that this these
those it its he she they we you i his her their our your not no yes but if then than so such which who whom what when
where why how there here has have had do does did can could would should will may might must also into about over under
up more most some any all each both only just very answer question source sources document documents passage text
according based sentence says said given provided based however therefore thus me my them him us""".split())  # noqa: SIM905
_CURRENCY = {"€": "eur", "eur": "eur", "euro": "eur", "euros": "eur", "$": "usd", "usd": "usd", "dollar": "usd",
             "dollars": "usd", "£": "gbp", "gbp": "gbp"}
_SCALE = {"thousand", "million", "billion", "trillion"}
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "  # noqa: SIM905
         "seventeen eighteen nineteen twenty").split()
_TENS = "thirty forty fifty sixty seventy eighty ninety".split()  # noqa: SIM905
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(_ONES)} | {w: str(10 * i) for i, w in enumerate(_TENS, start=3)}
CONTEXT = 4  # words either side of a number that say what it counts


@dataclass(frozen=True)
class Number:
    """A number as a sentence uses it: its value, how it was written, and what it counts."""

    value: str  # normalized: "7:15", "1200", "3.2 million"
    written: str  # as in the text, with its unit: "07:15", "140 EUR"
    kind: str  # "time", "date", "year", "percent" or "number"
    unit: str  # "eur", "tonne", "minute"… or ""
    context: frozenset[str]  # content words near it (stems)


@dataclass(frozen=True)
class Claims:
    """What one sentence states."""

    numbers: tuple[Number, ...]
    names: frozenset[str]  # capitalised words not starting the sentence, lower-cased
    words: frozenset[str]  # content words (stems), names and numbers excluded


def stem(word: str) -> str:
    """A crude English stem: lower-case, possessive and plural/tense endings off ("leaves" -> "leav")."""
    word = re.sub(r"['’]s$", "", word.lower())
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def same_word(a: str, b: str) -> bool:
    """Stems that match, or where one (of 4+ letters) starts the other ("leave"/"leav", "island"/"islands")."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short) and len(long) - len(short) <= 2


def strip_markers(text: str) -> str:
    """The text without citation markers and list bullets (their digits are not numbers the text states)."""
    return _LIST_ITEM.sub("", MARKER.sub(" ", text))


def sentences(text: str) -> list[str]:
    """The sentences of `text`; a fragment that is only citation markers stays with the sentence before it."""
    parts: list[str] = []
    for part in (p.strip() for p in SENTENCE_END.split(text)):
        if not part:
            continue
        if parts and not MARKER.sub("", part).strip(" .,;"):
            parts[-1] += " " + part
        else:
            parts.append(part)
    return parts


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning (no stop words, no numbers, no markers)."""
    return {stem(t) for t in _TOKEN.findall(strip_markers(text))
            if t[0].isalpha() and t.lower() not in COMMON and len(t) > 2}


def _value(token: str) -> tuple[str, str]:
    """(normalized value, kind) of a number token."""
    if token.endswith("%"):
        return _value(token[:-1])[0], "percent"
    if re.fullmatch(r"\d{1,2}:\d{2}", token):
        hours, minutes = token.split(":")
        return f"{int(hours)}:{minutes}", "time"
    if re.fullmatch(r"\d+(?:[/-]\d+)+", token):
        return "/".join(str(int(p)) for p in re.split(r"[/-]", token)), "date"
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        token = token.replace(",", "")
    token = token.replace(",", ".")
    if not re.fullmatch(r"\d+(?:\.\d+)?", token):  # "1.2.3", "10:30:00": compared as written
        return token, "number"
    value = f"{float(token):.6f}".rstrip("0").rstrip(".")
    return value, "year" if re.fullmatch(r"(1[5-9]|20)\d\d", token) else "number"


def claims(sentence: str) -> Claims:
    """The numbers, names and content words of one sentence."""
    tokens = _TOKEN.findall(strip_markers(sentence))
    lower = [t.lower() for t in tokens]
    numbers: list[Number] = []
    names: set[str] = set()
    used: set[int] = set()
    for i, token in enumerate(tokens):
        word_number = lower[i] in _NUMBER_WORDS and i + 1 < len(tokens) and tokens[i + 1][0].isalpha() \
            and lower[i + 1] not in COMMON
        if not (token[0].isdigit() or word_number):
            if token[0].isupper() and i > 0 and lower[i] not in COMMON and token not in _CURRENCY \
                    and lower[i] not in _CURRENCY:
                names.add(stem(token))
            continue
        value, kind = _value(token) if not word_number else (_NUMBER_WORDS[lower[i]], "number")
        written, end = token, i + 1
        if end < len(tokens) and lower[end] in _SCALE:
            value, written, end = f"{value} {lower[end]}", f"{written} {tokens[end]}", end + 1
        unit = ""
        if i > 0 and lower[i - 1] in _CURRENCY:
            unit, written = _CURRENCY[lower[i - 1]], f"{tokens[i - 1]}{written}"
            used.add(i - 1)
        elif end < len(tokens) and lower[end] in _CURRENCY:
            unit, written = _CURRENCY[lower[end]], f"{written} {tokens[end]}"
            used.add(end)
        elif end < len(tokens) and lower[end] in ("percent", "per"):
            kind = "percent"
        elif kind == "number" and end < len(tokens) and tokens[end][0].isalpha() and lower[end] not in COMMON:
            unit, written = stem(tokens[end]), f"{written} {tokens[end]}"
        near = [stem(t) for t in tokens[max(0, i - CONTEXT):end + CONTEXT] if t[0].isalpha() and len(t) > 2
                and not {t.lower()} & (COMMON | _CURRENCY.keys() | _NUMBER_WORDS.keys() | _SCALE)]
        numbers.append(Number(value, written, kind, unit, frozenset(near) - {unit}))
    words = {stem(t) for j, t in enumerate(tokens) if j not in used and t[0].isalpha() and lower[j] not in COMMON
             and lower[j] not in _NUMBER_WORDS and len(t) > 2} - names
    return Claims(tuple(numbers), frozenset(names), frozenset(words))
