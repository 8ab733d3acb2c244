"""Repetition of the default model: for each candidate setting, how often the most repeated sentence of each
answer to 20 open prompts (tests/repeat_prompts.py) comes, through the app's engine with a fixed seed.

Prints one JSON line per setting: the worst answer's count, how many answers repeat a sentence more than twice,
and the mean answer length in tokens.
    .venv/bin/python bench/repetition.py [--seeds 1,2] [--max-new-tokens 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.default_model import ensure_default_model
from app.engine import ChatEngine, Conversation, GenerationSettings
from app.engine.speculative import DraftConfig
from tests.repeat_prompts import PROMPTS, max_repeats

CANDIDATES = {
    "main": {"temperature": 0.7, "top_p": 0.9},
    "greedy": {"temperature": 0.0},
    "rep1.1": {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1},
    "rep1.2": {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.2},
    "rep1.3": {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.3},
    "freq0.2": {"temperature": 0.7, "top_p": 0.9, "frequency_penalty": 0.2},
    "freq0.5": {"temperature": 0.7, "top_p": 0.9, "frequency_penalty": 0.5},
    "pres0.5": {"temperature": 0.7, "top_p": 0.9, "presence_penalty": 0.5},
    "rep1.1+freq0.2": {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1, "frequency_penalty": 0.2},
    "greedy+rep1.1": {"temperature": 0.0, "repetition_penalty": 1.1},
    "greedy+freq0.5": {"temperature": 0.0, "frequency_penalty": 0.5},
    "greedy+pres0.5": {"temperature": 0.0, "presence_penalty": 0.5},
    "greedy+freq1.0": {"temperature": 0.0, "frequency_penalty": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--answers", type=Path, help="write every answer here (JSON lines)")
    args = parser.parse_args()
    engine = ChatEngine(ensure_default_model(), draft=DraftConfig(enabled=False))
    out = args.answers.open("w") if args.answers else None
    for name in args.candidates.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            settings = GenerationSettings(max_new_tokens=args.max_new_tokens, seed=seed, **CANDIDATES[name])
            start, counts, tokens = time.perf_counter(), [], []
            for prompt in PROMPTS:
                reply = engine.send(Conversation(), prompt, settings)
                count, sentence = max_repeats(reply.answer)
                counts.append(count)
                tokens.append(reply.num_tokens)
                if out:
                    out.write(json.dumps({"candidate": name, "seed": seed, "prompt": prompt, "repeats": count,
                                          "sentence": sentence, "answer": reply.answer}) + "\n")
            print(json.dumps({"candidate": name, "seed": seed, "worst": max(counts),
                              "answers_over_2": sum(c > 2 for c in counts), "counts": counts,
                              "mean_tokens": round(sum(tokens) / len(tokens)),
                              "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
