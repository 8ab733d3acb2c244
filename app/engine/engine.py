"""ChatEngine: an exported model on openvino-genai, answering conversations with streaming and reasoning."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from app.engine.assisted import AssistedDecoder, Decoding
from app.engine.conversation import Conversation, Message, split_think_switch
from app.engine.cpu_features import PRECISION, decode_first
from app.engine.devices import available_devices
from app.engine.memory import available_memory, fit_context, kv_bytes_per_token, memory_problem, required_memory
from app.engine.model_folder import ModelFolderError, check_model_folder
from app.engine.settings import GenerationSettings
from app.engine.sparse_attention import op_library, pipeline_properties
from app.engine.speculative import (
    ASSISTED,
    DEFAULT_ASSISTANT_TOKENS,
    PLAIN,
    DraftConfig,
    DraftStats,
    draft_stats,
    plan_draft,
)
from app.engine.stateful_lm import StatefulLM, pipeline_activation_groups, target_properties
from app.engine.think_parser import Delta, ThinkParser
from app.engine.token_text import TokenText
from app.engine.tool_prompt import ToolTemplate
from app.engine.two_bit_load import stores_two_bit_codes, two_bit_pipeline
from export.log_file import content_logging

OnDelta = Callable[[Delta], None]
DEFAULT_CONTEXT = 8192  # for a config.json without max_position_embeddings
log = logging.getLogger(__name__)


def eos_tokens(folder: Path, tokenizer) -> frozenset[int]:
    """The ids that end an answer: generation_config.json's eos_token_id (one or a list) and the tokenizer's."""
    ids = {int(tokenizer.get_eos_token_id())} if tokenizer.get_eos_token_id() >= 0 else set()
    path = folder / "generation_config.json"
    if path.is_file():
        value = json.loads(path.read_text()).get("eos_token_id")
        ids.update(int(v) for v in (value if isinstance(value, list) else [value]) if v is not None)
    return frozenset(ids)


class Timing(NamedTuple):
    """How an answer was produced, as Reply reports it."""

    num_tokens: int
    ttft_ms: float
    tokens_per_second: float  # after the first token
    draft: DraftStats | None
    prefilled: int | None = None  # prompt tokens the engine's loop fed (None: GenAI's pipeline answered)


class EngineError(RuntimeError):
    """Generation failed; the message says why."""


class ContextOverflowError(EngineError):
    """The newest message alone does not fit in the model's context."""


@dataclass(frozen=True)
class Reply:
    """One answer: its text, its reasoning, how it ended and how fast it came."""

    answer: str
    reasoning: str
    num_tokens: int
    prompt_tokens: int
    ttft_ms: float
    tokens_per_second: float
    stopped: bool  # cancelled by the caller; the partial answer is kept
    unterminated_reasoning: bool
    dropped_messages: int  # oldest messages left out of the prompt to fit the context
    draft: DraftStats | None = None  # assisted generation: acceptance and tokens per target step
    # prompt tokens fed before the first answer token; the others came from the cache of the chat's previous
    # answer (the engine's own loop: sparse exports and assisted mode). None: GenAI's pipeline answered.
    prefilled_tokens: int | None = None


def plain_pipeline_properties(manifest: dict, config: dict, device: str, precision: str | None = None) -> dict:
    """openvino-genai LLMPipeline properties for plain answers of the export with `manifest` and `config`: the
    model's own (sparse attention: the op library), activation groups of the weights' size where they divide
    (stateful_lm.pipeline_activation_groups), and the activation precision: `precision` when given, else f32 on
    AMX CPUs (cpu_features.decode_first)."""
    chosen = {PRECISION: precision} if precision else {}
    return decode_first({**pipeline_properties(manifest), **pipeline_activation_groups(manifest, config, device),
                         **chosen}, device)


class ChatEngine:
    """A loaded model. Conversations are passed in; the engine holds no chat state of its own.

    Answers come from one of two modes: "assisted" (the engine's own loop, app/engine/assisted.py, with the draft
    when the model has a usable one) or "plain" (GenAI's pipeline, the target alone). A model with a draft answers
    in assisted mode; DraftConfig can keep sampled answers plain, and then the engine holds one mode at a time and
    generate() switches when an answer needs the other. `greedy` says which answers to expect first, so the first
    one does not pay a reload (None: greedy, as GenerationSettings defaults); prepare() does the same later.
    Exports with InfLLM v2 sparse attention always answer in assisted mode (with or without a draft): the loop's
    op cache keeps a chat's earlier turns, so a new turn prefills only its new tokens (Reply.prefilled_tokens).
    """

    def __init__(self, folder: Path, device: str = "CPU", context_tokens: int | None = None,
                 draft: DraftConfig | None = None, greedy: bool | None = None,
                 precision: str | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = check_model_folder(self.folder)
        devices = available_devices()
        if device not in devices:
            raise ModelFolderError(f"Device {device!r} is not available here; available: {', '.join(devices)}")
        self.device = device
        # the CPU plugin's activation precision; None: f32 on AMX CPUs (cpu_features.decode_first), else its default
        self.precision = precision
        self.draft_config = draft or DraftConfig()
        self._plan = plan_draft(self.folder, self.manifest, self.draft_config, device)
        self._config = config = json.loads((self.folder / "config.json").read_text())
        # the model's trained length unless told, as much of it as leaves its KV cache room in memory
        self.trained_context = int(config.get("max_position_embeddings") or DEFAULT_CONTEXT)
        fixed, per_token = required_memory(self.folder, self.draft_config.model), self._kv_per_token(config)
        available = available_memory()
        self.context_tokens, self.context_note = fit_context(int(context_tokens or self.trained_context), fixed,
                                                             per_token, available)
        problem = memory_problem(fixed + self.context_tokens * per_token, available)
        if problem:
            raise ModelFolderError(f"Cannot load {self.folder.name}: {problem}")
        if self.context_note:
            log.warning("%s: %s", self.folder.name, self.context_note)
        import openvino_genai as og

        self._og = og
        self._pipe = None  # plain mode: GenAI's pipeline
        self._decoder: AssistedDecoder | None = None  # assisted mode: the engine's own loop
        self._mode: str | None = None
        self._lock = threading.Lock()
        try:
            self._load(self._plan.mode_for(None if greedy is None else not greedy))
            # plain mode's pipeline already holds the tokenizer; assisted mode loads it once here
            self._tokenizer = self._pipe.get_tokenizer() if self._pipe is not None else og.Tokenizer(str(self.folder))
        except ModelFolderError:
            raise
        except (RuntimeError, ValueError) as err:
            raise ModelFolderError(self._load_failure(err)) from err
        self._eos = eos_tokens(self.folder, self._tokenizer)
        self.supports_thinking = "enable_thinking" in (self._tokenizer.chat_template or "")
        self._tool_template: ToolTemplate | None = None  # built on the first conversation with tools
        self._counted: tuple[str, int] = ("", 0)  # the last prompt counted: a caller's check, then generate()

    def _kv_per_token(self, config: dict) -> int:
        """KV cache bytes per context token in the attention that answers: the op's own cache in the engine's
        loop (the draft's too), GenAI's in plain mode; the larger when answers may take either mode."""
        modes = {self._plan.mode_for(False), self._plan.mode_for(True)}
        stride = int(((self.manifest.get("sparse_attention") or {}).get("config") or {}).get("kernel_stride") or 16)
        costs = [kv_bytes_per_token(config, False)] if PLAIN in modes else []
        if ASSISTED in modes:
            draft = self._plan.draft
            draft_cost = (kv_bytes_per_token(json.loads((draft / "config.json").read_text()), True)
                          if draft is not None else 0)
            costs.append(kv_bytes_per_token(config, True, stride) + draft_cost)
        return max(costs)

    @property
    def draft_state(self) -> str:
        """What the draft does now: "draft on", "draft idle: sampled answers", "draft off…" with the reason, or ""
        when the model has no draft."""
        return self._plan.status(self._mode)

    @property
    def pipeline_mode(self) -> str | None:
        """"assisted" (target + draft) or "plain" (target alone) as loaded now; None after a failed reload."""
        return self._mode

    @property
    def name(self) -> str:
        """The model folder's name."""
        return self.folder.name

    def prepare(self, settings: GenerationSettings) -> str:
        """Load the pipeline mode that answers with `settings` need (blocks while it loads); returns the mode."""
        with self._lock:
            return self._switch(settings)

    def needs_reload(self, settings: GenerationSettings) -> bool:
        """Whether an answer with `settings` first reloads the model in the other pipeline mode (draft on/idle)."""
        return self._plan.mode_for(not settings.greedy) != self._mode

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the model's tokenizer encodes a prompt (special tokens included)."""
        counted = self._counted  # one tuple, read and replaced whole: safe from any thread
        if counted[0] == text and text:
            return counted[1]
        count = int(self._tokenizer.encode([text]).input_ids.get_shape()[1])
        self._counted = (text, count)
        return count

    def fits(self, conversation: Conversation, max_new_tokens: int, think: bool | None = None) -> bool:
        """Whether the whole conversation's prompt and an answer of `max_new_tokens` fit in the context."""
        prompt = self.render(conversation.prompt_messages(), think, conversation.tools)
        return self.count_tokens(prompt) <= self._prompt_budget(max_new_tokens)

    def _prompt_budget(self, max_new_tokens: int) -> int:
        """Prompt tokens the context leaves room for next to an answer of `max_new_tokens`."""
        return self.context_tokens - max_new_tokens

    def render(self, messages: list[dict], think: bool | None, tools: list[dict] | None = None) -> str:
        """The prompt the chat template makes of `messages`, ready for the assistant's turn. With tools, tool
        calls or tool results it is rendered by app/engine/tool_prompt.py (ToolTemplateError when it cannot)."""
        extra = {"enable_thinking": bool(think)} if self.supports_thinking and think is not None else None
        if tools or any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
            return self.tool_template.render(messages, tools, extra)
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, extra_context=extra)

    @property
    def tool_template(self) -> ToolTemplate:
        """The chat template as conversations with tools render it (built on first use)."""
        if self._tool_template is None:
            tokenizer = self._tokenizer
            self._tool_template = ToolTemplate(tokenizer.chat_template or "", tokenizer.get_bos_token(),
                                               tokenizer.get_eos_token())
        return self._tool_template

    def send(self, conversation: Conversation, text: str, settings: GenerationSettings | None = None,
             think: bool | None = None, on_delta: OnDelta | None = None,
             cancel: threading.Event | None = None) -> Reply:
        """Add the user's message (a trailing /think or /no_think sets `think`) and generate the answer."""
        text, switch = split_think_switch(text)
        conversation.messages.append(Message("user", text))
        return self.generate(conversation, settings, switch if switch is not None else think, on_delta, cancel)

    def generate(self, conversation: Conversation, settings: GenerationSettings | None = None,
                 think: bool | None = None, on_delta: OnDelta | None = None,
                 cancel: threading.Event | None = None) -> Reply:
        """Answer the conversation's last user message and append the answer (reasoning kept apart).

        Switches the pipeline mode first when this answer needs the other one (see the class docstring)."""
        settings = settings or GenerationSettings()
        first, prompt, prompt_tokens = self._fit(conversation, settings.max_new_tokens, think)
        parser = ThinkParser(starts_in_think=prompt.rstrip().endswith("<think>"))
        og = self._og
        stopped = False

        def stream(chunk: str):
            nonlocal stopped
            for delta in parser.feed(chunk):
                if on_delta is not None:
                    on_delta(delta)
            if cancel is not None and cancel.is_set():
                stopped = True
                return og.StreamingStatus.STOP
            return og.StreamingStatus.RUNNING

        with self._lock:
            if self._switch(settings) == ASSISTED:
                timing = self._assisted(prompt, settings, stream, cancel)
                return self._answer(timing, parser, conversation, prompt_tokens, first, stopped, cancel)
            config = self.generation_config(settings)
            try:
                result = self._pipe.generate([prompt], config, streamer=stream)
            except RuntimeError as err:
                raise EngineError(f"Generation failed: {str(err).splitlines()[0]}") from err
        perf = result.perf_metrics
        tpot = float(perf.get_tpot().mean)
        timing = Timing(int(perf.get_num_generated_tokens()), float(perf.get_ttft().mean),
                        1000.0 / tpot if tpot > 0 else 0.0, None)
        return self._answer(timing, parser, conversation, prompt_tokens, first, stopped, cancel)

    def generation_config(self, settings: GenerationSettings):
        """The openvino_genai.GenerationConfig a plain-mode answer with `settings` runs with: the model's own
        (GenAI reads generation_config.json) with `settings` over it, the prompt already templated."""
        config = self._pipe.get_generation_config() if self._pipe is not None else self._og.GenerationConfig()
        settings.apply(config)
        config.apply_chat_template = False
        return config

    def _answer(self, timing: Timing, parser: ThinkParser, conversation: Conversation, prompt_tokens: int,
                dropped: int, stopped: bool, cancel: threading.Event | None) -> Reply:
        """Append the finished answer to the conversation and describe it."""
        parsed = parser.finish()
        log.info("answered: %d prompt tokens, %d new tokens, %.1f tok/s, first token %.0f ms%s", prompt_tokens,
                 timing.num_tokens, timing.tokens_per_second, timing.ttft_ms, ", stopped" if stopped else "")
        if content_logging():  # CPMDESK_LOG_CONTENT=1: the user allowed prompts and answers in the log
            asked = next((m.content for m in reversed(conversation.messages) if m.role == "user"), "")
            log.info("prompt: %r", asked)
            log.info("answer: %r", parsed.answer)
        conversation.messages.append(Message("assistant", parsed.answer, parsed.reasoning))
        return Reply(answer=parsed.answer, reasoning=parsed.reasoning, num_tokens=timing.num_tokens,
                     prompt_tokens=prompt_tokens, ttft_ms=timing.ttft_ms, tokens_per_second=timing.tokens_per_second,
                     stopped=stopped or bool(cancel is not None and cancel.is_set()),
                     unterminated_reasoning=parsed.unterminated, dropped_messages=dropped, draft=timing.draft,
                     prefilled_tokens=timing.prefilled)

    def _assisted(self, prompt: str, settings: GenerationSettings, stream,
                  cancel: threading.Event | None) -> Timing:
        """Decode with the engine's own loop, streaming text through `stream`."""
        og = self._og
        ids = [int(i) for i in self._tokenizer.encode([prompt]).input_ids.data[0]]
        text = TokenText(self._tokenizer, settings.stop_strings)

        def on_tokens(new: list[int]) -> bool:
            piece = text.push(new)
            if piece and stream(piece) == og.StreamingStatus.STOP:
                return False
            return not text.stopped and not (cancel is not None and cancel.is_set())

        config = self.draft_config
        decoding = Decoding(settings, self._eos, int(config.num_assistant_tokens or DEFAULT_ASSISTANT_TOKENS),
                            config.confidence_threshold)
        try:
            result = self._decoder.generate(ids, decoding, on_tokens)
        except RuntimeError as err:
            raise EngineError(f"Generation failed: {str(err).splitlines()[0]}") from err
        rest = text.finish()
        if rest:
            stream(rest)
        count = len(result.tokens)
        stats = (draft_stats(result.drafted, result.accepted, result.target_steps, count)
                 if self._decoder.draft is not None else None)
        rate = (count - 1) / result.decode_seconds if count > 1 and result.decode_seconds > 0 else 0.0
        return Timing(count, 1000.0 * result.prompt_seconds, rate, stats, result.prefilled)

    def _load(self, mode: str) -> None:
        """Replace the loaded mode by `mode`, the old models freed first (two targets need not fit in memory)."""
        self._pipe, self._decoder, self._mode = None, None, None
        if mode == ASSISTED:
            library = op_library()
            target = StatefulLM(self.folder / "openvino_model.xml", self.device, library,
                                {**target_properties(self.manifest, self.device),
                                 **({PRECISION: self.precision} if self.precision else {})})
            draft = self._plan.draft
            # the draft's one-token steps run on a static-shape copy (~20 % faster; see stateful_lm)
            self._decoder = AssistedDecoder(target, None if draft is None else StatefulLM(
                draft / "openvino_model.xml", self.device, library, static_rows=(1,)))
        elif stores_two_bit_codes(self.manifest):
            self._pipe = two_bit_pipeline(self._og, self.folder, self.device, self._pipeline_properties())
        else:
            self._pipe = self._og.LLMPipeline(str(self.folder), self.device, **self._pipeline_properties())
        self._mode = mode

    def _pipeline_properties(self) -> dict:
        """The plain pipeline's properties for this engine (plain_pipeline_properties)."""
        return plain_pipeline_properties(self.manifest, self._config, self.device, self.precision)

    def _switch(self, settings: GenerationSettings) -> str:
        """Make the pipeline the mode answers with `settings` need (under the lock), reloading only when
        needs_reload() says so; returns the mode."""
        if self.needs_reload(settings):
            self._reload(self._plan.mode_for(not settings.greedy))
        return self._mode

    def _reload(self, mode: str) -> None:
        """_load() during generation: a failure is an EngineError with the load's explanation."""
        try:
            self._load(mode)
        except (RuntimeError, ValueError) as err:
            raise EngineError(self._load_failure(err)) from err

    def _load_failure(self, err: Exception) -> str:
        """What to tell the user when OpenVINO cannot load the pipeline."""
        if isinstance(err, ModelFolderError):
            return str(err)
        if "draft" in str(err).lower():
            return (f"The draft model of {self.folder.name} cannot assist it ({str(err).strip().splitlines()[-1]}); "
                    "turn the draft off in Settings or export the model again")
        return (f"OpenVINO could not load {self.folder.name} ({str(err).splitlines()[0]}); the IR may be corrupt: "
                "export the model again")

    def _fit(self, conversation: Conversation, max_new_tokens: int, think: bool | None) -> tuple[int, str, int]:
        """Drop the oldest turns (never the system prompt) until prompt + answer fit the context."""
        budget = self._prompt_budget(max_new_tokens)
        messages = conversation.messages
        first = 0
        while True:
            prompt = self.render(conversation.prompt_messages(first), think, conversation.tools)
            count = self.count_tokens(prompt)
            if count <= budget:
                return first, prompt, count
            later_turns = [i for i in range(first + 1, len(messages)) if messages[i].role == "user"]
            if not later_turns:
                raise ContextOverflowError(
                    f"The message is too long: {count} tokens, and the model's context of {self.context_tokens} "
                    f"tokens keeps {max_new_tokens} for the answer; shorten the message or lower max new tokens")
            first = later_turns[0]
