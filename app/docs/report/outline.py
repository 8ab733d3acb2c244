"""The report's outline: what the model plans, parsed robustly (JSON, numbered or bulleted lines, Markdown headings),
and a deterministic outline from the matching documents when the model's plan is unusable."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from app.docs.retrieval import Passage

MIN_SECTIONS, MAX_SECTIONS = 2, 5
_LINE = re.compile(r"^\s*(?:#{1,4}\s+|(?:\d+|[ivx]+|[A-Z])[.):]\s+|[-*•]\s+|section\s+\d+\s*[:.-]\s*)(.+)$",
                   re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:[:–—]|\s-\s)\s*")
_GENERIC = re.compile(r"^(?:sections?|outline|title|report|topic|sources?|none|n/?a|\.\.\.|etc\.?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """One section to write: its title and what it must cover."""

    title: str
    covers: str

    def to_dict(self) -> dict:
        """As the job's state file keeps it."""
        return {"title": self.title, "covers": self.covers}

    @classmethod
    def from_dict(cls, data: dict) -> Section:
        """From the job's state file."""
        return cls(str(data["title"]), str(data.get("covers", "")))


def outline_prompt(topic: str, sections: int = 4) -> str:
    """The user turn that asks the model for an outline."""
    return (f"Plan a short report on: {topic}\n\nList {sections} sections, one per line, each as "
            "'number. Section title: what the section covers'. Write only the list.")


def _clean(text: str) -> str:
    text = re.sub(r"[*_`#\"]+", "", text).strip(" .;,-\t")
    return re.sub(r"\s+", " ", text)


def _usable_title(title: str, topic: str) -> bool:
    letters = sum(c.isalpha() for c in title)
    return 2 <= len(title) <= 80 and letters >= 3 and not _GENERIC.match(title) \
        and title.lower() != topic.lower().strip(" .?")


def _from_json(text: str) -> list[tuple[str, str]]:
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start < 0:
        return []
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return []
    if isinstance(data, dict):
        data = data.get("sections") or data.get("outline") or [{"title": k, "covers": v} for k, v in data.items()
                                                                 if isinstance(v, str)]
    found = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, str):
            found.append((item, ""))
        elif isinstance(item, dict):
            title = item.get("title") or item.get("name") or item.get("section") or ""
            covers = item.get("covers") or item.get("description") or item.get("plan") or item.get("content") or ""
            found.append((str(title), str(covers) if isinstance(covers, str) else ""))
    return found


def _from_lines(text: str) -> list[tuple[str, str]]:
    found = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        parts = [*_SPLIT.split(match.group(1).strip(), maxsplit=1), ""]
        found.append((parts[0], parts[1]))
    return found


def parse_outline(text: str, topic: str) -> list[Section] | None:
    """The sections a model's outline names (at most MAX_SECTIONS, duplicates dropped), or None when fewer than
    MIN_SECTIONS usable ones are there."""
    sections: list[Section] = []
    seen: set[str] = set()
    for title, covers in _from_json(text) or _from_lines(text):
        title, covers = _clean(title), _clean(covers)
        if not _usable_title(title, topic) or title.lower() in seen:
            continue
        seen.add(title.lower())
        sections.append(Section(title, covers if covers.lower() != title.lower() else ""))
        if len(sections) == MAX_SECTIONS:
            break
    return sections if len(sections) >= MIN_SECTIONS else None


def fallback_outline(topic: str, passages: list[Passage], count: int = MAX_SECTIONS) -> list[Section]:
    """A deterministic outline from the passages that match the topic: an overview, then one section per matching
    part of a document (its heading, else its file name and page), in the order of their best passage."""
    count = max(MIN_SECTIONS, min(count, MAX_SECTIONS))
    sections = [Section("Overview", f"what the documents say about {topic}")]
    for passage in passages:
        name = Path(passage.path.replace("\\", "/")).stem.replace("_", " ").replace("-", " ").strip().capitalize()
        title = passage.heading.strip() or (f"{name}, page {passage.page}" if passage.page is not None else name)
        if title.lower() in {s.title.lower() for s in sections}:
            continue
        sections.append(Section(title, f"{topic}: what {Path(passage.path).name} says"))
        if len(sections) == count:
            break
    if len(sections) < MIN_SECTIONS:
        sections.append(Section("Details", f"the details the documents give about {topic}"))
    return sections
