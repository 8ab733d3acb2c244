"""Where a decode step's time goes: one-token steps of an exported model under several compile settings, side by side.

For each variant (interleaved per repetition, so machine drift hits all alike) it prefills `--prompt` tokens,
then times `--steps` one-token steps: wall ms per step and process CPU ms per step (user + sys, less sensitive to
other processes on a shared machine). With `--perf` it also prints OpenVINO's per-node profile (PERF_COUNT) of one
step, summed by node type, and the time outside nodes (the step's wall time minus the nodes' own).

Variants: `genai` (openvino-genai LLMPipeline as ChatEngine loads it: the streamer callback included; `genai@DIR`
another export of the same model; `genai-g128`, `-u8kv`, `-f32`, `-nopin`, `-sdpa`: plugin settings),
`raw` (the IR's own infer request, dynamic shapes, stateful SDPA), `raw-g<N>` (the same with activation groups N),
`op` (StatefulLM, cpmdesk's attention op, dynamic) and `op-static` (StatefulLM with a static [1, 1] copy).

    .venv/bin/python bench/decode_profile.py MODEL_DIR [--variants genai,raw,op,op-static] [--perf]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    times = os.times()
    return times.user + times.system


class RawLM:
    """The IR's own stateful infer request, fed one token at a time (what LLMPipeline's SDPA backend runs)."""

    def __init__(self, xml: Path, properties: dict) -> None:
        import openvino as ov

        core = ov.Core()
        self.request = core.compile_model(core.read_model(str(xml)), "CPU", properties).create_infer_request()
        self.inputs = {name for port in self.request.model_inputs for name in port.get_names()}
        self.length = 0

    def feed(self, tokens: list[int]) -> np.ndarray:
        n = len(tokens)
        feeds = {"input_ids": np.asarray([tokens], np.int64),
                 "attention_mask": np.ones((1, self.length + n), np.int64),
                 "position_ids": np.arange(self.length, self.length + n, dtype=np.int64)[None],
                 "beam_idx": np.zeros(1, np.int32)}
        self.request.infer({k: v for k, v in feeds.items() if k in self.inputs})
        self.length += n
        return self.request.get_tensor("logits").data[0, -1]

    def reset(self) -> None:
        self.request.reset_state()
        self.length = 0


def build(variant: str, folder: Path, perf: bool, threads: int | None):
    """A stepper for `variant`: an object with feed(tokens) -> last logits and reset()."""
    base = {"PERF_COUNT": True} if perf else {}
    if threads:
        base["INFERENCE_NUM_THREADS"] = threads
    if variant.startswith("raw"):
        props = dict(base)
        for part in variant.split("-")[1:]:
            if part.startswith("g"):
                props["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = int(part[1:])
            elif part == "u8kv":
                props["KV_CACHE_PRECISION"] = "u8"
            elif part == "nopin":
                props["ENABLE_CPU_PINNING"] = False
            elif part == "pin":
                props["ENABLE_CPU_PINNING"] = True
            elif part in ("f32", "bf16"):
                props["INFERENCE_PRECISION_HINT"] = part
        return RawLM(folder / "openvino_model.xml", props)
    if variant.startswith("op"):
        from app.engine.sparse_attention import op_library
        from app.engine.stateful_lm import StatefulLM

        props = dict(base)
        for part in variant.split("-")[1:]:
            if part.startswith("g"):
                props["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = int(part[1:])
            elif part in ("f32", "bf16"):
                props["INFERENCE_PRECISION_HINT"] = part
        lm = StatefulLM(folder / "openvino_model.xml", "CPU", op_library(), props,
                        static_rows=(1,) if "static" in variant else ())

        class Op:
            def feed(self, tokens):
                return lm.feed(tokens)[-1]

            def reset(self):
                lm.reset()

            request = lm._static.get(1, lm._dynamic)
        return Op()
    raise ValueError(variant)


def run_genai(folder: Path, prompt: list[int], steps: int, threads: int | None, props: dict):
    """LLMPipeline.generate with a text streamer, as ChatEngine calls it: (wall ms, CPU ms) per token after the
    first, from two generate() calls (1 and steps+1 new tokens) so the prompt's share cancels out."""
    import openvino_genai as og

    key = json.dumps([str(folder), props])
    pipe = run_genai.cache.get(key)
    if pipe is None:
        extra = dict(props)
        if threads:
            extra["INFERENCE_NUM_THREADS"] = threads
        pipe = og.LLMPipeline(str(folder), "CPU", **extra)
        run_genai.cache[key] = pipe
    tokenizer = pipe.get_tokenizer()
    text = tokenizer.decode(prompt)

    config = pipe.get_generation_config()
    config.max_new_tokens = steps + 1
    config.min_new_tokens = steps + 1
    config.ignore_eos = True
    config.do_sample = False
    config.apply_chat_template = False
    stamps: list[tuple[float, float]] = []

    def streamer(chunk: str) -> bool:
        stamps.append((time.perf_counter(), cpu_seconds()))
        return False

    pipe.generate([text], config, streamer=streamer)
    count = max(1, len(stamps) - 1)  # chunks: the text streamer may hold back a token or two
    return ((stamps[-1][0] - stamps[0][0]) / count * 1000, (stamps[-1][1] - stamps[0][1]) / count * 1000)


run_genai.cache = {}


def profile(request) -> dict:
    """The last inference's per-node real time (ms), summed by node type."""
    totals: dict[str, float] = {}
    for info in request.get_profiling_info():
        key = f"{info.node_type}/{info.exec_type}"
        totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1000
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--variants", default="genai,raw,op,op-static")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--perf", action="store_true")
    args = parser.parse_args()
    from app.privacy import disable_telemetry

    disable_telemetry()
    variants = args.variants.split(",")
    rng = np.random.default_rng(0)
    vocab = json.loads((args.model / "config.json").read_text())["vocab_size"]
    steppers = {v: build(v, args.model, args.perf, args.threads) for v in variants if not v.startswith("genai")}
    samples: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for _rep in range(args.reps):
        prompt = [int(t) for t in rng.integers(100, min(vocab, 30000), args.prompt)]
        for variant in variants:
            if variant.startswith("genai"):
                name, _, folder = variant.partition("@")  # genai@OTHER_EXPORT: another export of the same model
                props = {"ATTENTION_BACKEND": "SDPA"} if "sdpa" in name else {}
                for part in name.split("-")[1:]:
                    if part.startswith("g"):
                        props["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = int(part[1:])
                    elif part == "u8kv":
                        props["KV_CACHE_PRECISION"] = "u8"
                    elif part in ("f32", "bf16"):
                        props["INFERENCE_PRECISION_HINT"] = part
                    elif part == "nopin":
                        props["ENABLE_CPU_PINNING"] = False
                samples[variant].append(run_genai(Path(folder) if folder else args.model, prompt, args.steps,
                                                  args.threads, props))
                continue
            lm = steppers[variant]
            lm.reset()
            token = int(np.argmax(lm.feed(prompt)))
            lm.feed([token])  # the first one-token step (a new shape for a dynamic model) is not timed
            begin, begin_cpu = time.perf_counter(), cpu_seconds()
            for _ in range(args.steps):
                token = int(np.argmax(lm.feed([token])))
            samples[variant].append(((time.perf_counter() - begin) / args.steps * 1000,
                                     (cpu_seconds() - begin_cpu) / args.steps * 1000))
    for variant in variants:
        wall = statistics.median(s[0] for s in samples[variant])
        cpu = statistics.median(s[1] for s in samples[variant])
        row = {"bench": "decode-step", "model": args.model.name, "variant": variant, "prompt": args.prompt,
               "step_ms": round(wall, 2), "tok_s": round(1000 / wall, 1), "cpu_ms_per_token": round(cpu, 2),
               "all_ms": [round(s[0], 2) for s in samples[variant]]}
        if args.perf and variant in steppers:
            lm = steppers[variant]
            begin = time.perf_counter()
            lm.feed([1])
            wall_one = (time.perf_counter() - begin) * 1000
            nodes = profile(lm.request)
            row["perf_step_ms"] = round(wall_one, 2)
            row["perf_nodes_ms"] = round(sum(nodes.values()), 2)
            row["perf_by_type"] = {k: round(v, 2) for k, v in list(nodes.items())[:10]}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
