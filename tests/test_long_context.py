"""Long context in the app (issue 18): chats that keep their cache on the sparse path and in the assisted loop,
the context per model with its memory check, and documents answered whole when they fit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine import ChatEngine, Conversation, GenerationSettings, Message, ModelFolderError
from app.engine.memory import kv_bytes_per_token, required_memory
from export.sparse_attention import add_to_export_folder
from ov_ops.sparse_config import SparseAttentionConfig
from tests.conftest import REPO
from tests.test_sparse_export import LONG_PROMPT, TIGHT
from tests.test_speculative import _export_with_draft

pytestmark = pytest.mark.slow

GREEDY = GenerationSettings(max_new_tokens=16)
TURNS = (LONG_PROMPT, "And what did the fishermen say about the lighthouse that night?",
         "Tell me more about the market by the sea.")


@pytest.fixture(scope="module")
def tight_sparse(tiny_minicpm, exported, tmp_path_factory) -> Path:
    """The tiny MiniCPM4 with really sparse InfLLM v2 attention (1 init + 2 top-k + 2 local blocks of 16)."""
    folder = tmp_path_factory.mktemp("tight") / "model"
    shutil.copytree(exported(tiny_minicpm, "int4"), folder)
    add_to_export_folder(folder, SparseAttentionConfig(**TIGHT))
    return folder


def _fresh(folder: Path, conversation: Conversation, **kwargs):
    """The answer a newly loaded engine (empty cache: the whole prompt prefilled) gives to `conversation`."""
    copy = Conversation(conversation.system, list(conversation.messages))
    return ChatEngine(folder, **kwargs).generate(copy, GREEDY)


def _chat_keeps_its_cache(folder: Path, **kwargs) -> None:
    engine = ChatEngine(folder, **kwargs)
    conversation = Conversation()
    first = engine.send(conversation, TURNS[0], GREEDY)
    assert first.prefilled_tokens == first.prompt_tokens > 100  # past dense_len: the sparse path ran
    previous = first.prompt_tokens
    for text in TURNS[1:]:
        reply = engine.send(conversation, text, GREEDY)
        new_tokens = reply.prompt_tokens - previous  # the previous answer, the new user turn, the template
        assert 0 < reply.prefilled_tokens <= new_tokens, (reply.prefilled_tokens, new_tokens)
        fresh = _fresh(folder, Conversation(messages=conversation.messages[:-1]), **kwargs)
        assert fresh.prefilled_tokens == fresh.prompt_tokens == reply.prompt_tokens
        assert (reply.answer, reply.num_tokens) == (fresh.answer, fresh.num_tokens)
        previous = reply.prompt_tokens

    # regenerate the last answer: everything but the prompt's last token is in the cache
    del conversation.messages[-1]
    again = engine.generate(conversation, GREEDY)
    assert again.prefilled_tokens == 1 and again.answer == reply.answer

    # edit the second user turn: the cache is truncated to the first turn (and the template up to the edit)
    conversation.messages[2:] = [Message("user", "What colour was the lighthouse?")]
    edited = engine.generate(conversation, GREEDY)
    fresh = _fresh(folder, Conversation(messages=conversation.messages[:-1]), **kwargs)
    assert edited.prefilled_tokens < edited.prompt_tokens - first.prompt_tokens
    assert (edited.answer, edited.num_tokens) == (fresh.answer, fresh.num_tokens)

    # a new chat: the cache is dropped to the template's common start
    other = engine.send(Conversation(), "Say hello.", GREEDY)
    assert other.prefilled_tokens > 0
    assert other.answer == _fresh(folder, Conversation(messages=[Message("user", "Say hello.")]), **kwargs).answer


def test_sparse_chat_feeds_only_new_tokens_and_answers_as_a_full_prefill(tight_sparse) -> None:
    _chat_keeps_its_cache(tight_sparse)
    assert ChatEngine(tight_sparse).pipeline_mode == "assisted"  # the op cache's loop, not GenAI's pipeline


def test_assisted_chat_keeps_target_and_draft_caches(tiny_llama) -> None:
    folder = _export_with_draft(tiny_llama, "fp16", tiny_llama)
    engine = ChatEngine(folder)
    assert engine.draft_state == "draft on"
    conversation = Conversation()
    engine.send(conversation, TURNS[0], GREEDY)
    second = engine.send(conversation, TURNS[1], GREEDY)
    assert second.prefilled_tokens < second.prompt_tokens // 2 and second.draft is not None
    decoder = engine._decoder
    # both caches hold the conversation so far (the last answer token is never fed)
    assert decoder.target.tokens[:second.prompt_tokens] == decoder.draft.tokens[:second.prompt_tokens]
    fresh = _fresh(folder, Conversation(messages=conversation.messages[:-1]))
    assert (second.answer, second.num_tokens) == (fresh.answer, fresh.num_tokens)


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_context_defaults_to_the_trained_length_and_can_be_set(tight_sparse, tiny_llama, exported) -> None:
    assert _config(tight_sparse)["max_position_embeddings"] == 32768  # MiniCPM4's, where 8192 was the cap
    engine = ChatEngine(tight_sparse)
    assert (engine.context_tokens, engine.context_note) == (32768, None)
    plain = exported(tiny_llama, "int4")
    assert ChatEngine(plain).context_tokens == _config(plain)["max_position_embeddings"] == 4096
    assert ChatEngine(tight_sparse, context_tokens=12000).context_tokens == 12000


def test_memory_check_counts_the_kv_cache_of_the_attention_that_runs(tight_sparse, tiny_minicpm, exported,
                                                                     monkeypatch) -> None:
    import app.engine.engine as engine_module

    op_cost = kv_bytes_per_token(_config(tight_sparse), True, TIGHT["kernel_stride"])
    genai_cost = kv_bytes_per_token(_config(tight_sparse), False)
    assert op_cost > genai_cost > 0
    free = required_memory(tight_sparse) + 10_000 * op_cost
    monkeypatch.setattr(engine_module, "available_memory", lambda: free)
    sparse = ChatEngine(tight_sparse)  # the op's cache: 10,000 tokens fit, in whole 1024-token steps 9,216
    assert sparse.context_tokens == 9216
    assert "context reduced to 9,216 tokens (of 32,768)" in sparse.context_note
    # the same model on GenAI's attention (the op taken out: a plain export of the same weights) fits more
    plain = exported(tiny_minicpm, "int4")
    genai = ChatEngine(plain)
    assert genai.pipeline_mode == "plain"
    assert genai.context_tokens == min(32768, (free - required_memory(plain)) // genai_cost // 1024 * 1024)
    assert genai.context_tokens > sparse.context_tokens
    # not even the smallest context fits: refused with the memory it needs
    monkeypatch.setattr(engine_module, "available_memory", lambda: required_memory(tight_sparse))
    with pytest.raises(ModelFolderError, match="needs about"):
        ChatEngine(tight_sparse)


def test_cli_context_option_sets_the_context(tight_sparse) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "ask", "--model", str(tight_sparse), "--context", "64",
                             "--max-new-tokens", "8", LONG_PROMPT], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode != 0
    assert "the model's context of 64 tokens" in result.stderr


def test_settings_context_reaches_the_engine(tight_sparse) -> None:
    from app.app_settings import AppSettings
    from app.gui.workers import ModelLoader

    got = []
    for setting, want in ((12288, 12288), (0, 32768)):  # 0: the model's own
        loader = ModelLoader(tight_sparse, "CPU", context=AppSettings(context=setting).context or None)
        loader.loaded.connect(got.append)
        loader.failed.connect(got.append)
        loader.run()
        assert got[-1].context_tokens == want
