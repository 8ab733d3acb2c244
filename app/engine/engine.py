"""ChatEngine: an exported model on openvino-genai, answering conversations with streaming and reasoning."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.engine.conversation import Conversation, Message, split_think_switch
from app.engine.devices import available_devices
from app.engine.memory import available_memory, memory_problem, required_memory
from app.engine.model_folder import ModelFolderError, check_model_folder
from app.engine.settings import GenerationSettings
from app.engine.sparse_attention import pipeline_properties
from app.engine.speculative import (
    ASSISTED,
    DraftConfig,
    DraftStats,
    draft_stats,
    is_sampling_crash,
    plan_draft,
)
from app.engine.think_parser import Delta, ThinkParser

OnDelta = Callable[[Delta], None]
DEFAULT_CONTEXT = 8192


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


class ChatEngine:
    """A loaded model. Conversations are passed in; the engine holds no chat state of its own.

    A model with a usable draft holds one pipeline at a time, "assisted" (with the draft, for greedy answers) or
    "plain" (the target alone, for sampled answers, which skip the draft); generate() switches when an answer needs
    the other. `greedy` says which answers to expect first, so the first one does not pay a reload (None: greedy,
    as GenerationSettings defaults); prepare() does the same later.
    """

    def __init__(self, folder: Path, device: str = "CPU", context_tokens: int | None = None,
                 draft: DraftConfig | None = None, greedy: bool | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = check_model_folder(self.folder)
        problem = memory_problem(required_memory(self.folder), available_memory())
        if problem:
            raise ModelFolderError(f"Cannot load {self.folder.name}: {problem}")
        devices = available_devices()
        if device not in devices:
            raise ModelFolderError(f"Device {device!r} is not available here; available: {', '.join(devices)}")
        import openvino_genai as og

        self._og = og
        self.device = device
        self.draft_config = draft or DraftConfig()
        self._plan = plan_draft(self.folder, self.manifest, self.draft_config, device)
        self._pipe = None
        self._mode: str | None = None
        self._draft_lost = False  # the assisted pipeline was reloaded without its draft (see _run)
        self._lock = threading.Lock()
        try:
            self._load(self._plan.mode_for(None if greedy is None else not greedy))
        except ModelFolderError:
            raise
        except RuntimeError as err:
            raise ModelFolderError(self._load_failure(err)) from err
        self._tokenizer = self._pipe.get_tokenizer()
        self.supports_thinking = "enable_thinking" in (self._tokenizer.chat_template or "")
        model_max = json.loads((self.folder / "config.json").read_text()).get("max_position_embeddings")
        self.context_tokens = int(context_tokens or min(model_max or DEFAULT_CONTEXT, DEFAULT_CONTEXT))

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
        return self._plan.mode_for(not settings.greedy) != self._mode or self._draft_lost

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the model's tokenizer encodes a prompt (special tokens included)."""
        return int(self._tokenizer.encode([text]).input_ids.get_shape()[1])

    def render(self, messages: list[dict[str, str]], think: bool | None) -> str:
        """The prompt the chat template makes of `messages`, ready for the assistant's turn."""
        extra = {"enable_thinking": bool(think)} if self.supports_thinking and think is not None else None
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, extra_context=extra)

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
        streamed: list[str] = []

        def stream(chunk: str):
            nonlocal stopped
            streamed.append(chunk)
            for delta in parser.feed(chunk):
                if on_delta is not None:
                    on_delta(delta)
            if cancel is not None and cancel.is_set():
                stopped = True
                return og.StreamingStatus.STOP
            return og.StreamingStatus.RUNNING

        with self._lock:
            drafting = self._switch(settings) == ASSISTED
            config = self._pipe.get_generation_config()
            settings.apply(config)
            config.apply_chat_template = False
            if drafting:
                self.draft_config.apply(config)
            result, resumed, drafted = self._run(prompt, config, stream, streamed, drafting)
        parsed = parser.finish()
        conversation.messages.append(Message("assistant", parsed.answer, parsed.reasoning))
        perf = result.perf_metrics
        tpot = float(perf.get_tpot().mean)
        return Reply(answer=parsed.answer, reasoning=parsed.reasoning,
                     num_tokens=resumed + int(perf.get_num_generated_tokens()), prompt_tokens=prompt_tokens,
                     ttft_ms=float(perf.get_ttft().mean), tokens_per_second=1000.0 / tpot if tpot > 0 else 0.0,
                     stopped=stopped or bool(cancel is not None and cancel.is_set()),
                     unterminated_reasoning=parsed.unterminated, dropped_messages=first,
                     draft=draft_stats(perf, result.extended_perf_metrics)
                     if drafted and result.extended_perf_metrics is not None else None)

    def _load(self, mode: str, with_draft: bool = True) -> None:
        """Replace the pipeline by one in `mode`, the old one freed first (two targets need not fit in memory)."""
        self._pipe, self._mode = None, None
        properties = {**pipeline_properties(self.manifest), **self._plan.pipeline_kwargs(mode, self._og, with_draft)}
        self._pipe = self._og.LLMPipeline(str(self.folder), self.device, **properties)
        self._mode, self._draft_lost = mode, mode == ASSISTED and not with_draft

    def _switch(self, settings: GenerationSettings) -> str:
        """Make the pipeline the mode answers with `settings` need (under the lock), reloading only when
        needs_reload() says so; returns the mode."""
        if self.needs_reload(settings):
            self._reload(self._plan.mode_for(not settings.greedy))
        return self._mode

    def _reload(self, mode: str, with_draft: bool = True) -> None:
        """_load() during generation: a failure is an EngineError with the load's explanation."""
        try:
            self._load(mode, with_draft)
        except RuntimeError as err:
            raise EngineError(self._load_failure(err)) from err

    def _load_failure(self, err: RuntimeError) -> str:
        """What to tell the user when OpenVINO cannot load the pipeline."""
        if isinstance(err, ModelFolderError):
            return str(err)
        if "draft" in str(err).lower():
            return (f"The draft model of {self.folder.name} cannot assist it ({str(err).strip().splitlines()[-1]}); "
                    "turn the draft off in Settings or export the model again")
        return (f"OpenVINO could not load {self.folder.name} ({str(err).splitlines()[0]}); the IR may be corrupt: "
                "export the model again")

    def _run(self, prompt: str, config, stream, streamed: list[str], drafting: bool):
        """Generate; returns the result, the tokens streamed before a resumed attempt (usually 0) and whether the
        result came from the draft-assisted pipeline.

        GenAI 2026.4's speculative decoding with sampling (DraftConfig.greedy_only=False) intermittently fails an
        internal check, and the pipeline then never drafts again. The answer is then finished by the target alone
        at the same settings from the text streamed so far (the user sees one continuous answer), and the draft is
        loaded afresh before the next assisted answer.
        """
        try:
            return self._pipe.generate([prompt], config, streamer=stream), 0, drafting
        except RuntimeError as err:
            if not (drafting and config.do_sample and is_sampling_crash(err)):
                raise EngineError(f"Generation failed: {str(err).splitlines()[0]}") from err
        self._reload(ASSISTED, with_draft=False)
        text = "".join(streamed)
        resumed = int(self._tokenizer.encode([text], add_special_tokens=False).input_ids.get_shape()[1])
        config.max_new_tokens = max(1, config.max_new_tokens - resumed)
        config.num_assistant_tokens, config.assistant_confidence_threshold = 0, 0.0  # no draft to ask
        try:
            return self._pipe.generate([prompt + text], config, streamer=stream), resumed, False
        except RuntimeError as err:
            raise EngineError(f"Generation failed: {str(err).splitlines()[0]}") from err

    def _fit(self, conversation: Conversation, max_new_tokens: int, think: bool | None) -> tuple[int, str, int]:
        """Drop the oldest turns (never the system prompt) until prompt + answer fit the context."""
        budget = self.context_tokens - max_new_tokens
        messages = conversation.messages
        first = 0
        while True:
            prompt = self.render(conversation.prompt_messages(first), think)
            count = self.count_tokens(prompt)
            if count <= budget:
                return first, prompt, count
            later_turns = [i for i in range(first + 1, len(messages)) if messages[i].role == "user"]
            if not later_turns:
                raise ContextOverflowError(
                    f"The message is too long: {count} tokens, and the model's context of {self.context_tokens} "
                    f"tokens keeps {max_new_tokens} for the answer; shorten the message or lower max new tokens")
            first = later_turns[0]
