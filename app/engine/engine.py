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
from app.engine.speculative import DraftConfig, DraftStats, draft_stats, is_sampling_crash, plan_draft
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
    """A loaded model. Conversations are passed in; the engine holds no chat state of its own."""

    def __init__(self, folder: Path, device: str = "CPU", context_tokens: int | None = None,
                 draft: DraftConfig | None = None) -> None:
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
        self.draft_config = draft or DraftConfig()
        try:
            self._draft = plan_draft(self.folder, self.manifest, self.draft_config, device, og)
            properties = {**pipeline_properties(self.manifest), **self._draft.pipeline_kwargs}
            self._pipe = og.LLMPipeline(str(self.folder), device, **properties)
        except RuntimeError as err:
            if "draft" in str(err).lower():
                raise ModelFolderError(f"The draft model of {self.folder.name} cannot assist it "
                                       f"({str(err).strip().splitlines()[-1]}); turn the draft off in Settings "
                                       "or export the model again") from err
            raise ModelFolderError(f"OpenVINO could not load {self.folder.name} ({str(err).splitlines()[0]}); "
                                   "the IR may be corrupt: export the model again") from err
        self.device = device
        self._tokenizer = self._pipe.get_tokenizer()
        self.supports_thinking = "enable_thinking" in (self._tokenizer.chat_template or "")
        model_max = json.loads((self.folder / "config.json").read_text()).get("max_position_embeddings")
        self.context_tokens = int(context_tokens or min(model_max or DEFAULT_CONTEXT, DEFAULT_CONTEXT))
        self._lock = threading.Lock()
        self._reload_draft = False  # see _run

    @property
    def draft_state(self) -> str:
        """"draft on", "draft off…" with the reason, or "" when the model has no draft."""
        return self._draft.status

    @property
    def name(self) -> str:
        """The model folder's name."""
        return self.folder.name

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
        """Answer the conversation's last user message and append the answer (reasoning kept apart)."""
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

        config = self._pipe.get_generation_config()
        settings.apply(config)
        config.apply_chat_template = False
        drafting = self._draft.active and self.draft_config.apply(config)
        with self._lock:
            result, resumed = self._run(prompt, config, stream, streamed)
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
                     if drafting and result.extended_perf_metrics is not None else None)

    def _run(self, prompt: str, config, stream, streamed: list[str]):
        """Generate; returns the result and the tokens streamed before a resumed attempt (usually 0).

        GenAI 2026.4's speculative decoding with sampling intermittently fails an internal check, and the pipeline
        then never drafts again. The answer is then finished by the target alone from the text streamed so far
        (the user sees one continuous answer), and the draft is loaded afresh before the next answer.
        """
        if self._reload_draft:  # a fresh draft_model(): the old one holds a model GenAI already transformed
            self._draft = plan_draft(self.folder, self.manifest, self.draft_config, self.device, self._og)
            self._pipe = self._og.LLMPipeline(str(self.folder), self.device, **self._draft.pipeline_kwargs)
            self._reload_draft = False
        kwargs = self._draft.pipeline_kwargs
        try:
            return self._pipe.generate([prompt], config, streamer=stream), 0
        except RuntimeError as err:
            if not (self._draft.active and config.do_sample and is_sampling_crash(err)):
                raise EngineError(f"Generation failed: {str(err).splitlines()[0]}") from err
        del self._pipe  # release the failed pipeline before the model is read again
        self._pipe = self._og.LLMPipeline(str(self.folder), self.device,
                                          **{k: v for k, v in kwargs.items() if k != "draft_model"})
        self._reload_draft = True
        text = "".join(streamed)
        resumed = int(self._tokenizer.encode([text], add_special_tokens=False).input_ids.get_shape()[1])
        config.max_new_tokens = max(1, config.max_new_tokens - resumed)
        try:
            return self._pipe.generate([prompt + text], config, streamer=stream), resumed
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
