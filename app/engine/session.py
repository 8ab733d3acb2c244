"""ChatEngine: load an exported model with openvino-genai and answer a conversation, streaming text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.engine.model_folder import check_model_folder

OnText = Callable[[str], bool | None]  # return True to stop


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings; temperature 0 means greedy."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_strings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Reply:
    """One answer and how fast it came."""

    text: str
    num_tokens: int
    ttft_ms: float
    tokens_per_second: float
    stopped: bool


class ChatEngine:
    """A loaded model. The conversation is passed in as a list of {role, content} messages each time."""

    def __init__(self, folder: Path, device: str = "CPU") -> None:
        self.folder = Path(folder)
        self.manifest = check_model_folder(self.folder)
        import openvino_genai as og

        self._og = og
        self._pipe = og.LLMPipeline(str(self.folder), device)
        self.device = device

    def reply(self, messages: list[dict[str, str]], settings: GenerationSettings | None = None,
              on_text: OnText | None = None) -> Reply:
        """Generate the assistant's next message for `messages`; `on_text` receives text chunks as they stream."""
        og = self._og
        settings = settings or GenerationSettings()
        history = og.ChatHistory()
        for message in messages:
            history.append({"role": message["role"], "content": message["content"]})
        stopped = False

        def stream(chunk: str) -> og.StreamingStatus:
            nonlocal stopped
            if on_text is not None and on_text(chunk):
                stopped = True
                return og.StreamingStatus.STOP
            return og.StreamingStatus.RUNNING

        result = self._pipe.generate(history, self._config(settings), streamer=stream)
        perf = result.perf_metrics
        tokens = int(perf.get_num_generated_tokens())
        tpot = float(perf.get_tpot().mean)
        return Reply(text=result.texts[0], num_tokens=tokens, ttft_ms=float(perf.get_ttft().mean),
                     tokens_per_second=1000.0 / tpot if tpot > 0 else 0.0, stopped=stopped)

    def _config(self, settings: GenerationSettings):
        config = self._pipe.get_generation_config()
        config.max_new_tokens = settings.max_new_tokens
        config.repetition_penalty = settings.repetition_penalty
        if settings.temperature > 0:
            config.do_sample = True
            config.temperature = settings.temperature
            config.top_p = settings.top_p
            config.top_k = settings.top_k
            if settings.seed is not None:
                config.rng_seed = settings.seed
        else:
            config.do_sample = False
        if settings.stop_strings:
            config.stop_strings = set(settings.stop_strings)
        return config
