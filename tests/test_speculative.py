"""Assisted generation: drafts exported beside the target, refused when they cannot assist it, and greedy answers
that stay token-for-token the target's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine import ChatEngine, Conversation, GenerationSettings
from app.engine.speculative import DraftConfig
from export.draft import DraftMismatchError, DraftRequest
from export.exporter import ExportRequest, run_export
from export.manifest import read_manifest, write_manifest
from export.settings import Quantization
from tests.conftest import EXPORTS, REPO

PROMPTS = ("How many books do I have if I had 5 and bought 3?", "Say hello to the sea.",
           "Write a short list of fruits.")


def _export_with_draft(source: Path, weight_format: str, draft: Path, vocab: int | None = None) -> Path:
    """Target in `weight_format` with an int4 draft in OUT/draft, exported once and cached like `exported`."""
    out = EXPORTS / (f"{source.name}-{weight_format}-draft-{draft.name}-int4" + (f"-vocab{vocab}" if vocab else ""))
    manifest = read_manifest(out)
    fresh = manifest is not None and manifest["source"]["path"] == str(source.resolve()) and "draft" in manifest
    if not fresh:
        run_export(ExportRequest(str(source), out, Quantization(weight_format=weight_format), force=True,
                                 draft=DraftRequest(str(draft), vocab=vocab)))
    return out


def _assert_same_greedy_answers(folder: Path, max_new_tokens: int) -> list:
    with_draft = ChatEngine(folder)
    plain = ChatEngine(folder, draft=DraftConfig(enabled=False, exact=True))
    assert with_draft.draft_state == "draft on" and plain.draft_state == "draft off"
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0)
    stats = []
    for prompt in PROMPTS:
        assisted = with_draft.send(Conversation(), prompt, settings)
        alone = plain.send(Conversation(), prompt, settings)
        assert alone.draft is None
        assert assisted.num_tokens == alone.num_tokens > 0
        assert (assisted.answer, assisted.reasoning) == (alone.answer, alone.reasoning)
        assert assisted.draft is not None and 0 < assisted.draft.accepted_tokens <= assisted.draft.draft_tokens
        assert 0.0 < assisted.draft.acceptance_rate <= 1.0 and assisted.draft.target_steps > 0
        stats.append(assisted.draft)
    return stats


@pytest.fixture(scope="module")
def tiny_pair(tiny_llama) -> Path:
    return _export_with_draft(tiny_llama, "fp16", tiny_llama)


def test_draft_is_exported_beside_the_target_and_recorded(tiny_pair: Path) -> None:
    manifest = read_manifest(tiny_pair)
    entry = manifest["draft"]
    assert entry["kind"] == "standalone" and entry["path"] == "draft"
    assert entry["quantization"]["weight_format"] == "int4" and manifest["quantization"]["weight_format"] == "fp16"
    assert entry["validation"]["passed"] and entry["sizes"]["weights_bytes"] > 0
    draft = tiny_pair / "draft"
    assert (draft / "openvino_tokenizer.xml").is_file()
    assert read_manifest(draft)["quantization"]["weight_format"] == "int4"
    assert (draft / "openvino_model.bin").stat().st_size < (tiny_pair / "openvino_model.bin").stat().st_size


@pytest.mark.slow
def test_tiny_greedy_answers_are_identical_with_the_draft(tiny_pair: Path) -> None:
    stats = _assert_same_greedy_answers(tiny_pair, 48)
    assert "accepted" in stats[0].describe()


@pytest.fixture(scope="module")
def tiny_pair_cut(tiny_llama) -> Path:
    """The tiny pair with the draft's LM head cut to the first half of the vocabulary (chat markers excluded)."""
    return _export_with_draft(tiny_llama, "fp16", tiny_llama, vocab=2048)


def _logits_width(xml: Path) -> int:
    import openvino as ov

    return ov.Core().read_model(str(xml)).output(0).get_partial_shape()[2].get_length()


def test_draft_vocabulary_cut_is_recorded_and_shrinks_the_head(tiny_pair_cut: Path) -> None:
    entry = read_manifest(tiny_pair_cut)["draft"]["vocabulary"]
    assert entry["kept"] == 2048 and entry["of"] == 4096 and "lowest token ids" in entry["rule"]
    assert _logits_width(tiny_pair_cut / "draft" / "openvino_model.xml") == 2048
    assert _logits_width(tiny_pair_cut / "openvino_model.xml") == 4096  # the target is never cut


def test_draft_vocabulary_cut_refuses_too_few_tokens_and_keeps_a_small_vocabulary(tiny_pair: Path,
                                                                                    tmp_path: Path) -> None:
    from export.draft_vocab import cut_draft_vocabulary
    from export.errors import ExportError

    shutil.copytree(tiny_pair / "draft", tmp_path / "draft")
    xml = tmp_path / "draft" / "openvino_model.xml"
    before = xml.with_suffix(".bin").read_bytes()
    with pytest.raises(ExportError, match="at least the 256 byte tokens"):
        cut_draft_vocabulary(xml, 100)
    assert cut_draft_vocabulary(xml, 65536) == {"kept": 4096, "of": 4096, "rule": "all"}
    assert xml.with_suffix(".bin").read_bytes() == before and sorted(p.name for p in xml.parent.glob("*.cut.*")) == []


@pytest.mark.slow
def test_greedy_answers_stay_identical_with_a_cut_draft_vocabulary(tiny_pair_cut: Path) -> None:
    _assert_same_greedy_answers(tiny_pair_cut, 48)


@pytest.mark.slow
def test_smollm2_greedy_answers_are_identical_with_an_int4_copy_as_draft() -> None:
    from app.default_model import find_default_gguf

    gguf = find_default_gguf()
    folder = _export_with_draft(gguf, "int8", gguf)
    stats = _assert_same_greedy_answers(folder, 40)
    assert sum(s.accepted_tokens for s in stats) / sum(s.draft_tokens for s in stats) > 0.3  # a real draft helps


def test_mismatched_vocabulary_is_refused_before_any_conversion(tiny_llama, tmp_path: Path) -> None:
    from app.default_model import find_default_gguf

    out = tmp_path / "out"
    with pytest.raises(DraftMismatchError, match="does not share the target's tokenizer"):
        run_export(ExportRequest(str(find_default_gguf()), out, draft=DraftRequest(str(tiny_llama)),
                                 quant=Quantization(weight_format="int8")))
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


def test_cli_reports_the_mismatch_and_exits_2(tiny_llama, tmp_path: Path) -> None:
    from app.default_model import find_default_gguf

    result = subprocess.run([sys.executable, "-m", "export", str(tiny_llama), str(tmp_path / "out"),
                             "--draft", str(find_default_gguf())], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.startswith("error: The draft") and "same vocabulary" in result.stderr
    assert not (tmp_path / "out").exists()


def test_eagle3_draft_needs_a_target_with_ten_layers(tiny_llama, tmp_path: Path) -> None:
    layers = json.loads((tiny_llama / "config.json").read_text())["num_hidden_layers"]
    assert layers < 10
    with pytest.raises(DraftMismatchError, match=f"at least 10 decoder layers.*this target has {layers}"):
        run_export(ExportRequest(str(tiny_llama), tmp_path / "out", draft=DraftRequest(f"eagle3:{tiny_llama}")))


def test_sparse_attention_model_decodes_without_its_draft(tiny_pair: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sparse"
    shutil.copytree(tiny_pair, folder)
    manifest = read_manifest(folder)
    manifest["sparse_attention"] = {"op": "InfLLMv2"}
    write_manifest(folder, {k: v for k, v in manifest.items() if k != "format_version"})
    engine = ChatEngine(folder)
    assert engine.draft_state == "draft off: sparse attention"
    reply = engine.send(Conversation(), PROMPTS[0], GenerationSettings(max_new_tokens=8))
    assert reply.num_tokens > 0 and reply.draft is None


def test_a_model_without_draft_reports_nothing(tiny_llama, exported) -> None:
    engine = ChatEngine(exported(tiny_llama, "int4"))
    assert engine.draft_state == ""
    assert engine.send(Conversation(), PROMPTS[1], GenerationSettings(max_new_tokens=4)).draft is None


@pytest.mark.slow
def test_window_shows_the_draft_and_its_setting_turns_it_off(qtbot, tmp_path: Path, tiny_pair: Path) -> None:
    from tests.test_gui import LONG, open_window, send

    window = open_window(qtbot, tmp_path / "chats.sqlite3", tiny_pair, max_new_tokens=24, temperature=0.0)
    assert window.model_label.text().endswith("· draft on")
    send(qtbot, window, PROMPTS[0] + " /think")
    assert "accepted" in window.speed_label.text() and "tok/s" in window.speed_label.text()
    dialog = window.open_settings()
    assert dialog.use_draft.isChecked()
    dialog.use_draft.setChecked(False)
    with qtbot.waitSignal(window.model_ready, timeout=LONG):
        dialog.accept()
    assert window.model_label.text().endswith("· draft off") and window.store.get_setting("use_draft") is False
    send(qtbot, window, PROMPTS[1])
    assert "accepted" not in window.speed_label.text()


def test_cli_no_draft_flag(tiny_pair: Path) -> None:
    from app.cli import build_parser

    assert build_parser().parse_args(["ask", "hi", "--no-draft"]).draft is False
    assert build_parser().parse_args(["ask", "hi"]).draft is True


@pytest.mark.slow
def test_sampling_with_the_draft_survives_genai_check_failures(tiny_pair: Path) -> None:
    # GenAI 2026.4 intermittently fails a check in speculative sampling (seeds 2, 3 and 11 here, fresh pipeline)
    # and its pipeline then stops drafting; the engine finishes that answer without the draft and reloads it after.
    engine = ChatEngine(tiny_pair, draft=DraftConfig(greedy_only=False))
    drafted = []
    for seed in range(12):
        settings = GenerationSettings(max_new_tokens=48, temperature=0.8, top_p=0.9, seed=seed)
        reply = engine.send(Conversation(), "Tell me about books and the sea.", settings)
        assert reply.num_tokens > 0
        drafted.append(None if reply.draft is None else reply.draft.draft_tokens)
    assert None in drafted, drafted  # a failed answer, finished by the target alone (else nothing was exercised)
    assert sum(1 for n in drafted if n) >= 8, drafted  # the reloaded draft keeps drafting
    assert engine.send(Conversation(), PROMPTS[0], GenerationSettings(max_new_tokens=24)).draft.draft_tokens > 0


def test_sampled_answers_run_plain_and_greedy_answers_switch_to_the_draft(tiny_pair: Path) -> None:
    # Sampled answers skip the draft (GenAI 2026.4.1's speculative sampling fails its check), so they run on the plain
    # pipeline at the plugin's fast defaults; a greedy answer switches to the assisted one, and back.
    engine = ChatEngine(tiny_pair, greedy=False)
    assert engine.pipeline_mode == "plain" and engine.draft_state == "draft idle: sampled answers"
    for seed in range(2):
        settings = GenerationSettings(max_new_tokens=32, temperature=0.8, top_p=0.9, seed=seed)
        reply = engine.send(Conversation(), "Tell me about books and the sea.", settings)
        assert reply.num_tokens > 0 and reply.draft is None
        assert engine.pipeline_mode == "plain" and engine.draft_state == "draft idle: sampled answers"
    greedy = GenerationSettings(max_new_tokens=32)
    assisted = engine.send(Conversation(), PROMPTS[0], greedy)
    assert engine.pipeline_mode == "assisted" and engine.draft_state == "draft on"
    assert assisted.draft is not None and assisted.draft.draft_tokens > 0
    alone = ChatEngine(tiny_pair, draft=DraftConfig(enabled=False, exact=True)).send(Conversation(), PROMPTS[0], greedy)
    assert alone.draft is None and (assisted.answer, assisted.num_tokens) == (alone.answer, alone.num_tokens)
    sampled = GenerationSettings(max_new_tokens=16, temperature=0.7, seed=5)
    assert engine.send(Conversation(), PROMPTS[1], sampled).draft is None and engine.pipeline_mode == "plain"


def test_construction_hint_and_prepare_load_the_mode_answers_need(tiny_pair: Path) -> None:
    engine = ChatEngine(tiny_pair)  # no hint: greedy, as GenerationSettings defaults
    assert engine.pipeline_mode == "assisted" and engine.draft_state == "draft on"
    assert engine.prepare(GenerationSettings(temperature=0.7)) == "plain" == engine.pipeline_mode
    assert engine.prepare(GenerationSettings()) == "assisted" == engine.pipeline_mode
    assert ChatEngine(tiny_pair, greedy=True).pipeline_mode == "assisted"
    off = ChatEngine(tiny_pair, draft=DraftConfig(enabled=False), greedy=True)
    assert off.pipeline_mode == "plain" and off.draft_state == "draft off"
    assert off.prepare(GenerationSettings(temperature=0.7)) == "plain" and off.draft_state == "draft off"
    forced = ChatEngine(tiny_pair, draft=DraftConfig(greedy_only=False), greedy=False)  # the bench drafts samples
    assert forced.pipeline_mode == "assisted" and forced.draft_state == "draft on"


def test_only_the_assisted_mode_pays_the_exact_settings(tiny_pair: Path) -> None:
    import openvino_genai as og

    from app.engine.speculative import ASSISTED, EXACT_PROPERTIES, PLAIN, plan_draft

    manifest = read_manifest(tiny_pair)
    plan = plan_draft(tiny_pair, manifest, DraftConfig(), "CPU")
    assisted = plan.pipeline_kwargs(ASSISTED, og)
    assert "draft_model" in assisted and {k: v for k, v in assisted.items() if k != "draft_model"} == EXACT_PROPERTIES
    assert plan.pipeline_kwargs(PLAIN, og) == {}  # sampled answers: the plugin's fast defaults
    exact = plan_draft(tiny_pair, manifest, DraftConfig(exact=True), "CPU")
    assert exact.pipeline_kwargs(PLAIN, og) == EXACT_PROPERTIES
    off = plan_draft(tiny_pair, manifest, DraftConfig(enabled=False, exact=True), "CPU")
    assert off.mode_for(False) == PLAIN and off.pipeline_kwargs(PLAIN, og) == EXACT_PROPERTIES
    assert plan_draft(tiny_pair, manifest, DraftConfig(enabled=False), "CPU").pipeline_kwargs(PLAIN, og) == {}


@pytest.mark.slow
def test_window_loads_the_mode_its_temperature_needs_and_switches_after_settings(qtbot, tmp_path: Path,
                                                                                  tiny_pair: Path) -> None:
    from PySide6.QtCore import Qt

    from tests.test_gui import LONG, open_window, send

    window = open_window(qtbot, tmp_path / "chats.sqlite3", tiny_pair, max_new_tokens=16, temperature=0.7)
    assert window.engine.pipeline_mode == "plain"
    assert window.model_label.text().endswith("· draft idle: sampled answers")
    send(qtbot, window, PROMPTS[1])
    assert "accepted" not in window.speed_label.text() and window.model_label.text().endswith("· draft idle: "
                                                                                              "sampled answers")
    dialog = window.open_settings()
    dialog.temperature.setValue(0.0)
    dialog.max_new_tokens.setValue(16)
    dialog.accept()  # no reload: the next answer switches, in its worker thread
    assert window.engine.pipeline_mode == "plain" and window.is_generating is False
    qtbot.keyClicks(window.composer, PROMPTS[0])
    with qtbot.waitSignal(window.answer_finished, timeout=LONG):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
        assert window.statusBar().currentMessage() == "Loading the model with its draft for greedy answers…"
    assert window.statusBar().currentMessage() == ""  # gone once the answer streams
    assert window.engine.pipeline_mode == "assisted" and window.model_label.text().endswith("· draft on")
    assert "accepted" in window.speed_label.text()
