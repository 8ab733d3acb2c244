"""MiniCPM4-Survey's own protocol, used when that model is loaded. Each step the model gets the query, the survey
so far (abbreviated), its last plan and the passages its last search found; it answers with an `<answer>` update
({"update": "plan" | "title" | "abstract" | "introduction" | "section-i[/subsection-j]" | "conclusion",
"content": …}, citations as \\cite{key}) and a `<tool_call>` (search_engine with a list of queries, or finalize).
The finished survey goes through the same support check as the orchestrated report (app/docs/report/write.py).

No MiniCPM4-Survey weights exist offline here, so the parser is tested on canned model output and the loop has
not run against the real model."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.docs.report.outline import Section
from app.docs.report.state import Progress, ReportState
from app.docs.report.write import Writing, check_section
from app.docs.retrieval import Passage
from app.engine import Conversation, Message

log = logging.getLogger(__name__)

MAX_STEPS = 40
SEARCH_TOP_K = 5
SYSTEM = """You write a survey from the user's documents, step by step, following the user's query.

Each step has two parts.
(1) Current update: think inside <think>...</think>, then give one update of the survey as JSON inside
<answer>...</answer>: {"update": position, "content": text}. Positions: "plan" (first step only; content is a dict
with "title", "introduction" and "sections": a list of {"title", "plan"}), "title", "abstract", "introduction",
"section-1", "section-1/subsection-1", "conclusion". Cite the retrieved passages as \\cite{key}. When there is
nothing to update, answer {}.
(2) Next plan: think inside <think>...</think>, then call one tool inside <tool_call>...</tool_call>:
{"name": "search_engine", "arguments": {"query": ["keywords", ...]}} to search the documents, or
{"name": "finalize", "arguments": {}} when the survey is finished.
Use valid JSON inside <answer> and <tool_call>."""
_CITE = re.compile(r"\\cite[pt]?\{([^}]*)\}")
_BAD_ESCAPE = re.compile(r"\\(?![\"\\/bfnrtu])")
_POSITION = re.compile(r"^section-(\d+)(?:/subsection-(\d+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class ToolCall:
    """The step's tool call: search_engine (with its queries) or finalize."""

    name: str
    queries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SurveyStep:
    """One parsed model turn: its update (None: none or unreadable) and its tool call (None: none)."""

    update: dict | None
    tool: ToolCall | None


def is_survey_model(folder: Path) -> bool:
    """Whether the model folder holds MiniCPM4-Survey (its name, or its config's or manifest's source name)."""
    names = [folder.name]
    for file in ("config.json", "cpmdesk_manifest.json", "manifest.json"):
        try:
            data = json.loads((folder / file).read_text(encoding="utf-8"))
        except FileNotFoundError:  # a model folder holds some of these files, not all
            continue
        except (OSError, ValueError) as err:
            log.warning("reading %s to recognise MiniCPM4-Survey failed: %s", folder / file, err)
            continue
        names += [str(data.get("_name_or_path", "")), str((data.get("source") or {}).get("path", ""))
                  if isinstance(data.get("source"), dict) else str(data.get("source", ""))]
    return any("minicpm4-survey" in n.lower().replace("_", "-") for n in names)


def _json_object(text: str) -> dict | None:
    """The first JSON object in `text`, forgiving what small models get wrong: bare backslashes (\\cite),
    missing closing braces, trailing text."""
    start = text.find("{")
    if start < 0:
        return None
    candidate = _BAD_ESCAPE.sub(r"\\\\", text[start:].strip())
    for attempt in (candidate, candidate + "}" * max(0, candidate.count("{") - candidate.count("}"))):
        try:
            data, _ = json.JSONDecoder().raw_decode(attempt)
        except ValueError:
            continue
        return data if isinstance(data, dict) else None
    return None


def _block(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)(?:</{tag}>|<tool_call>|<answer>|$)", text, re.DOTALL)
    return match.group(1).strip() if match else None


def parse_step(text: str) -> SurveyStep:
    """The update and the tool call of one model turn."""
    update = None
    answer = _block(text, "answer")
    if answer is not None:
        data = _json_object(answer)
        if data and "update" in data and "content" in data:
            update = data
    tool = None
    call = _block(text, "tool_call")
    if call is not None:
        data = _json_object(call) or {}
        name = str(data.get("name", ""))
        if name == "finalize":
            tool = ToolCall("finalize")
        elif name == "search_engine":
            queries = (data.get("arguments") or {}).get("query") or []
            queries = [queries] if isinstance(queries, str) else queries
            tool = ToolCall("search_engine", tuple(str(q) for q in queries if str(q).strip()))
    return SurveyStep(update, tool)


def apply_update(survey: dict, update: dict) -> bool:
    """Apply one <answer> update to the survey dict; False when it does not fit (wrong position, plan twice)."""
    position, content = str(update.get("update", "")).strip().lower(), update.get("content")
    if position == "plan":
        if survey or not isinstance(content, dict):
            return False
        sections = [{"title": str(s.get("title") or s.get("name") or ""), "plan": str(s.get("plan", "")),
                     "content": ""} for s in content.get("sections", []) if isinstance(s, dict)]
        survey.update({"title": str(content.get("title", "")), "introduction": "", "sections": sections,
                       "conclusion": ""})
        return bool(sections)
    if not isinstance(content, str):
        return False
    if position in ("title", "abstract", "introduction", "conclusion"):
        survey[position] = content
        return True
    match = _POSITION.match(position)
    sections = survey.get("sections") or []
    if not match or not 1 <= int(match.group(1)) <= len(sections):
        return False
    section = sections[int(match.group(1)) - 1]
    if match.group(2) is None:
        section["content"] = content
        return True
    subsections = section.setdefault("subsections", [])
    j = int(match.group(2))
    if j > len(subsections) + 1 or j < 1:
        return False
    if j == len(subsections) + 1:
        subsections.append({"title": f"Part {j}", "content": ""})
    subsections[j - 1]["content"] = content
    return True


def abbreviated(survey: dict) -> str:
    """The survey so far as the model is shown it: titles, [OK] and the start of written parts, [PLAN] others."""
    if not survey:
        return "There is no survey yet."
    lines = [f"# Title: {survey.get('title') or 'None'}"]
    for key in ("abstract", "introduction"):
        text = survey.get(key) or ""
        lines.append(f"# {key.capitalize()}: {'[OK] ' + text[:50] + '…' if text else 'None'}")
    for i, section in enumerate(survey.get("sections", []), start=1):
        text = section.get("content") or ""
        lines.append(f"# Section-{i} [{section['title']}]: "
                     + (f"[OK] {text[:50]}…" if text else f"[PLAN] {section.get('plan', '')}"))
    lines.append(f"# Conclusion: {'[OK]' if survey.get('conclusion') else 'None'}")
    return "\n".join(lines)


def step_prompt(topic: str, survey: dict, last_call: str, found: list[dict]) -> str:
    """The user turn of one step."""
    listed = "\n".join(f"[{p['key']}] {p['text']}" for p in found) or "No results."
    return (f"Update the survey.\n**Query**\n{topic}\n\n**Current survey**\n{abbreviated(survey)}\n\n"
            f"**Current plan**\n<tool_call>{last_call or '{}'}</tool_call>\n\n**Retrieved passages**\n{listed}\n\n"
            "Answer in the output format.")


def _cites_to_markers(text: str, keys: dict[str, int]) -> str:
    def marker(match) -> str:
        numbers = [keys[k.strip()] for k in match.group(1).split(",") if k.strip() in keys]
        return "".join(f"[{n}]" for n in numbers)

    return _CITE.sub(marker, text)


def run_survey(writing: Writing, state: ReportState, save: Callable[[], None],
               progress: Callable[[Progress], None]) -> None:
    """The protocol's loop until finalize (or MAX_STEPS), saved after every step; then each written section is
    checked like an orchestrated one and becomes a section of the report."""
    memory = state.survey or {"survey": {}, "step": 0, "last_call": "", "found": [], "passages": {}}
    state.survey = memory
    finished = False
    while memory["step"] < MAX_STEPS and not writing.cancel.is_set():
        sections = memory["survey"].get("sections", [])
        progress(Progress("section", sum(bool(s.get("content")) for s in sections), len(sections),
                          f"step {memory['step'] + 1}"))
        conversation = Conversation(SYSTEM, [Message("user", step_prompt(state.topic, memory["survey"],
                                                                          memory["last_call"], memory["found"]))])
        reply = writing.engine.generate(conversation, writing.settings, None, None, writing.cancel)
        if writing.cancel.is_set():
            return
        step = parse_step(f"{reply.reasoning}\n{reply.answer}")
        if step.update is not None and not apply_update(memory["survey"], step.update):
            log.info("survey step %d: update %r does not fit", memory["step"], step.update.get("update"))
        memory["found"] = []
        if step.tool is None or step.tool.name == "finalize":
            finished = True
        else:
            for query in step.tool.queries[:4]:
                for passage in writing.search(query, SEARCH_TOP_K):
                    key = f"p{passage.chunk_id}"
                    memory["passages"][key] = {"chunk_id": passage.chunk_id, "path": passage.path,
                                               "page": passage.page, "heading": passage.heading, "text": passage.text}
                    if all(f["key"] != key for f in memory["found"]):
                        memory["found"].append({"key": key, "text": passage.text})
            memory["last_call"] = json.dumps({"name": "search_engine", "arguments": {"query": list(step.tool.queries)}})
        memory["step"] += 1
        save()
        if finished:
            break
    if writing.cancel.is_set():
        return
    _to_sections(writing, state, memory)


def _to_sections(writing: Writing, state: ReportState, memory: dict) -> None:
    """The survey's written parts as checked report sections."""
    survey = memory["survey"]
    parts = [("Introduction", survey.get("introduction") or "")]
    parts += [(s["title"], s.get("content") or " ".join(x.get("content", "") for x in s.get("subsections", [])))
              for s in survey.get("sections", [])]
    parts.append(("Conclusion", survey.get("conclusion") or ""))
    parts = [(title, text) for title, text in parts if text.strip()]
    state.outline = [Section(title, "") for title, _ in parts]
    state.sections = []
    for title, text in parts:
        keys = sorted({k.strip() for m in _CITE.finditer(text) for k in m.group(1).split(",")
                       if k.strip() in memory["passages"]})
        given = [Passage(i, p["chunk_id"], p["path"], p["page"], p["heading"], p["text"], 0.0, 0.0)
                 for i, p in enumerate((memory["passages"][k] for k in keys), start=1)]
        draft = _cites_to_markers(text, {k: i for i, k in enumerate(keys, start=1)})
        result = check_section(writing, draft, given, {p.chunk_id: p for p in given}, state, f"{state.topic} {title}")
        result.title, result.run = title, state.runs
        state.sections.append(result)
