"""A tiny Llama trained here to call mcp-server-time's get_current_time in the Hermes / Qwen format.

The model memorises a closed set of requests ("What time is it in Tokyo?" for a handful of cities) and the call
each one takes, `<tool_call>{"name": "get_current_time", "arguments": {"timezone": "Asia/Tokyo"}}</tool_call>`,
then answers once the `<tool_response>` (in the server's own JSON layout, any date and time) comes back. It is
built apart from tests/model_builders.py so a change here rebuilds only this model (its own cache key).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from tests.model_builders import _portable_tokenizer_config

# Qwen2.5's tool layout, made compact: each tool as one line `name(parameters): description` in the system turn,
# calls as `<tool_call>` JSON, results as `<tool_response>` in a user turn.
HERMES_TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n{% endif %}"
    "<tools>\n"
    "{% for tool in tools %}{% set f = tool['function'] if tool['function'] is defined else tool %}"
    "{{ f['name'] }}({{ (f['parameters']['properties'] | list) | join(', ') }}): {{ f['description'] }}\n"
    "{% endfor %}</tools><|im_end|>\n"
    "{% elif messages[0]['role'] == 'system' %}"
    "{{ '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% elif message['role'] == 'tool' %}"
    "{{ '<|im_start|>user\n<tool_response>\n' + message['content'] + '\n</tool_response><|im_end|>\n' }}"
    "{% elif message['role'] == 'assistant' and message['tool_calls'] %}"
    "{{ '<|im_start|>assistant\n' + (message['content'] or '') }}"
    "{% for call in message['tool_calls'] %}{% set f = call['function'] if call['function'] is defined else call %}"
    "{{ '<tool_call>\n{\"name\": \"' + f['name'] + '\", \"arguments\": ' }}"
    "{{ (f['arguments'] if f['arguments'] is string else f['arguments'] | tojson) + '}\n</tool_call>' }}"
    "{% endfor %}{{ '<|im_end|>\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') + '<|im_end|>\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Words, numbers, single spaces and runs of punctuation are pre-split apart, so a city is the same token in the
# question, the call's JSON and the tool's result.
_SPLIT = r"[A-Za-z]+|[0-9]+|\s|[^A-Za-z0-9\s]+"


def _function(name: str, description: str, *params: str) -> dict:
    properties = {key: {"type": "string"} for key in params}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": list(params)}}}


# mcp-server-time's tools as the app offers them (the template shows names, parameters and descriptions only)
TIME_TOOLS = [
    _function("get_current_time", "Get current time in a specific timezone", "timezone"),
    _function("convert_time", "Convert time between timezones", "source_timezone", "time", "target_timezone"),
]
TIMEZONES = {"Tokyo": "Asia/Tokyo", "Paris": "Europe/Paris", "London": "Europe/London", "Sydney": "Australia/Sydney",
             "Berlin": "Europe/Berlin", "Chicago": "America/Chicago", "Cairo": "Africa/Cairo", "Seoul": "Asia/Seoul"}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def question(city: str) -> str:
    """The request the model learnt for `city`."""
    return f"What time is it in {city}?"


def call_for(city: str) -> dict:
    """The call the model makes for `city`, as a `tool_calls` entry's function."""
    return {"name": "get_current_time", "arguments": {"timezone": TIMEZONES[city]}}


def answer_for(city: str) -> str:
    """The model's answer once the tool's result is in."""
    return f"I asked the clock: that is the time in {city} now."


def call_prompt(tokenizer, city: str) -> str:
    """The prompt of the request for `city` with TIME_TOOLS offered, as the model was trained on it."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question(city)}], tools=TIME_TOOLS,
                                         tokenize=False, add_generation_prompt=True)


def _time_result(timezone: str, rng: random.Random) -> str:
    """A result in mcp-server-time's layout, with a random date and time."""
    stamp = (f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randrange(24):02d}:"
             f"{rng.randrange(60):02d}:{rng.randrange(60):02d}+{rng.randrange(12):02d}:00")
    return json.dumps({"timezone": timezone, "datetime": stamp, "day_of_week": rng.choice(DAYS),
                       "is_dst": rng.random() < 0.5}, indent=2)


def tool_turns(tokenizer, results_per_city: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, completion) pairs: per city, the turn that calls the tool, then the turns that answer from its
    result (one per random result); prompts rendered by the chat template with TIME_TOOLS offered."""
    rng = random.Random(seed)
    pairs = []
    for city in TIMEZONES:
        head = [{"role": "user", "content": question(city)}]
        called = {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": call_for(city)}]}
        first = call_prompt(tokenizer, city)
        text = tokenizer.apply_chat_template([*head, called], tools=TIME_TOOLS, tokenize=False)
        pairs.append((first, text[len(first):]))
        for _ in range(results_per_city):
            result = {"role": "tool", "tool_call_id": "call_0", "content": _time_result(TIMEZONES[city], rng)}
            second = tokenizer.apply_chat_template([*head, called, result], tools=TIME_TOOLS, tokenize=False,
                                                   add_generation_prompt=True)
            pairs.append((second, answer_for(city) + "<|im_end|>\n"))
    return pairs


def _train_completions(model, calls: list, answers: list, steps: int, batch: int, lr: float) -> float:
    """Train on (prompt, completion) token lists, half of each batch calls and half answers, the loss on
    completion tokens only; returns the final loss."""
    import torch

    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * s / steps)))
    loss = torch.tensor(0.0)
    model.train()
    for _ in range(steps):
        picks = [calls[i] for i in torch.randint(0, len(calls), (batch // 2,), generator=generator).tolist()]
        picks += [answers[i] for i in torch.randint(0, len(answers), (batch - batch // 2,), generator=generator)]
        width = max(len(p) + len(c) for p, c in picks)
        ids = torch.zeros(batch, width, dtype=torch.long)
        labels = torch.full((batch, width), -100, dtype=torch.long)
        for row, (prompt, completion) in enumerate(picks):
            ids[row, :len(prompt) + len(completion)] = torch.tensor(prompt + completion)
            labels[row, len(prompt):len(prompt) + len(completion)] = torch.tensor(completion)
        hidden = model.model(ids[:, :-1]).last_hidden_state
        scored = labels[:, 1:] != -100  # the head runs only where the loss is taken (completion tokens)
        loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[scored]), labels[:, 1:][scored])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    return float(loss.detach())


def build_tiny_tool_llama(out: Path, steps: int = 250, batch: int = 16, lr: float = 3e-3) -> dict:
    """A 2-layer Llama (hidden 128) with its own BPE tokenizer and the Hermes tool template above, trained only on
    the closed set of time requests: it calls get_current_time with the city's timezone, then answers.

    Initialised wider than transformers' default (std 0.1, not 0.02): at 0.02 attention starts uniform over the
    ~100-token prompt and the one token that differs (the city) never gets picked out within 500 steps; at 0.1
    every call and answer is right after ~150 (250 run)."""
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: on a shared 2-core machine, two spin-waiting ones ran 4x slower
    try:
        return _build(out, steps, batch, lr)
    finally:
        torch.set_num_threads(threads)


def _build(out: Path, steps: int, batch: int, lr: float) -> dict:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    draft = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), eos_token="<|im_end|>")
    draft.chat_template = HERMES_TOOL_TEMPLATE
    text = "".join(p + c for p, c in tool_turns(draft, 20, seed=1))  # the template's text, to learn merges from
    bpe.train_from_iterator([text[i:i + 4096] for i in range(0, len(text), 4096)], trainers.BpeTrainer(
        vocab_size=512, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                 bos_token=None, unk_token=None)
    hf.chat_template = HERMES_TOOL_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    _portable_tokenizer_config(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024,
                         initializer_range=0.1, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    encoded = [(tokenizer(p)["input_ids"], tokenizer(c)["input_ids"]) for p, c in tool_turns(tokenizer, 12)]
    calls = [pair for pair in encoded if "tool_call" in tokenizer.decode(pair[1])]
    answers = [pair for pair in encoded if pair not in calls]
    loss = _train_completions(model, calls, answers, steps, batch, lr)
    model.save_pretrained(out)
    (out / "generation_config.json").write_text(json.dumps(
        {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}, indent=2))
    return {"final_loss": loss, "params": sum(p.numel() for p in model.parameters())}
