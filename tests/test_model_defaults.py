"""Per-model sampling: built-in defaults < generation_config.json < the MiniCPM4 card < the user's changes (kept per
model), checked on the GenerationConfig the engine really answers with; the repetition guard on both paths."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import openvino_genai as og
import pytest

from app.app_settings import AppSettings
from app.engine import ChatEngine, GenerationSettings
from app.engine.model_defaults import REPETITION_GUARD, Sampling, model_defaults, model_key
from app.engine.speculative import DraftConfig
from app.engine.token_choice import penalize
from app.store import ChatStore

# logits this close may swap between GenAI's pipeline and the engine's own runtime settings (on a CPU with AMX both
# run f32, cpu_features.decode_first: the plugin's bf16 AMX kernels would round them up to ~1.0 apart)
NEAR_TIE = 0.25


@pytest.fixture(scope="module")
def tiny_export(tiny_llama, exported) -> Path:
    return exported(tiny_llama, "int4")


@pytest.fixture(scope="module")
def minicpm_export(tiny_minicpm, exported) -> Path:
    return exported(tiny_minicpm, "int4")


@pytest.fixture
def tuned_copy(tmp_path: Path, tiny_export: Path) -> Path:
    """The tiny export with sampling values of its own in generation_config.json."""
    folder = tmp_path / "tuned-model"
    shutil.copytree(tiny_export, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(temperature=0.3, top_p=0.5, top_k=20, repetition_penalty=1.15, do_sample=True)
    (folder / "generation_config.json").write_text(json.dumps(config))
    return folder


def _config(folder: Path, settings: GenerationSettings):
    return ChatEngine(folder, draft=DraftConfig(enabled=False)).generation_config(settings)


def test_built_in_defaults_with_the_guard(tiny_export: Path) -> None:
    assert model_defaults(tiny_export) == Sampling()  # its generation_config.json holds no sampling values
    config = _config(tiny_export, AppSettings().generation(tiny_export))
    assert config.do_sample and config.temperature == pytest.approx(Sampling.temperature)
    assert config.top_p == pytest.approx(Sampling.top_p) and config.repetition_penalty == pytest.approx(1.0)
    for name, value in REPETITION_GUARD.items():
        assert getattr(config, name) == pytest.approx(value)


def test_generation_config_json_values_are_picked_up(tuned_copy: Path) -> None:
    config = _config(tuned_copy, AppSettings().generation(tuned_copy))
    assert (config.temperature, config.top_p, config.top_k) == (pytest.approx(0.3), pytest.approx(0.5), 20)
    assert config.repetition_penalty == pytest.approx(1.15)
    data = json.loads((tuned_copy / "generation_config.json").read_text())
    (tuned_copy / "generation_config.json").write_text(json.dumps({**data, "do_sample": False}))
    assert model_defaults(tuned_copy).temperature == 0.0  # an explicit do_sample false: greedy, as transformers
    assert not _config(tuned_copy, AppSettings().generation(tuned_copy)).do_sample


def test_minicpm_card_over_generation_config(minicpm_export: Path) -> None:
    assert json.loads((minicpm_export / "generation_config.json").read_text())["temperature"] == 0.8
    config = _config(minicpm_export, AppSettings().generation(minicpm_export))
    assert (config.temperature, config.top_p) == (pytest.approx(0.7), pytest.approx(0.7))


def test_user_changes_are_kept_per_model_across_a_reload(tmp_path: Path, tuned_copy: Path,
                                                         minicpm_export: Path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    settings = AppSettings.load(store)
    settings.set_sampling(tuned_copy, Sampling(temperature=1.1, top_p=0.5, top_k=20, repetition_penalty=1.15,
                                               repetition_guard=False))
    settings.save(store)
    store.close()
    again = AppSettings.load(ChatStore(tmp_path / "chats.sqlite3"))
    assert again.model_sampling == {model_key(tuned_copy): {"temperature": 1.1, "repetition_guard": False}}
    tuned = _config(tuned_copy, again.generation(tuned_copy))
    assert tuned.temperature == pytest.approx(1.1) and tuned.top_p == pytest.approx(0.5)  # the rest: its defaults
    assert tuned.presence_penalty == 0.0 and tuned.frequency_penalty == 0.0  # the guard off for this model only
    other = _config(minicpm_export, again.generation(minicpm_export))
    assert (other.temperature, other.top_p) == (pytest.approx(0.7), pytest.approx(0.7))
    for name, value in REPETITION_GUARD.items():
        assert getattr(other, name) == pytest.approx(value)
    again.set_sampling(tuned_copy, model_defaults(tuned_copy))  # back to the defaults: nothing kept
    assert again.model_sampling == {}


def test_malformed_stored_values_fall_back_and_are_logged(tmp_path: Path, tiny_export: Path, caplog) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    store.set_setting("model_sampling", {model_key(tiny_export): {"temperature": "hot", "top_p": 0.4}})
    sampling = AppSettings.load(store).sampling(tiny_export)
    assert sampling.temperature == Sampling.temperature and sampling.top_p == 0.4
    assert "temperature" in caplog.text
    store.set_setting("model_sampling", ["not", "a", "dict"])
    assert AppSettings.load(store).model_sampling == {}


def test_settings_dialog_edits_the_current_models_sampling(qtbot, tuned_copy: Path, minicpm_export: Path) -> None:
    from app.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(AppSettings(), ["CPU"], model=tuned_copy)
    qtbot.addWidget(dialog)
    assert dialog.temperature.value() == pytest.approx(0.3) and dialog.repetition_guard.isChecked()
    dialog.repetition_guard.setChecked(False)
    dialog.top_k.setValue(5)
    result = dialog.result_settings()
    assert result.model_sampling == {model_key(tuned_copy): {"top_k": 5, "repetition_guard": False}}
    assert result.generation(tuned_copy).frequency_penalty == 0.0
    assert result.sampling(minicpm_export) == model_defaults(minicpm_export)
    other = SettingsDialog(result, ["CPU"], model=minicpm_export)
    qtbot.addWidget(other)
    assert other.temperature.value() == pytest.approx(0.7) and other.repetition_guard.isChecked()


def test_both_paths_apply_the_same_penalties(tiny_export: Path) -> None:
    """GenAI's greedy answers with each penalty on, replayed through the engine's own model with
    token_choice.penalize: the same token wins at every step (but for near-ties, where the two runtimes' rounding
    may decide), and the penalties change GenAI's answers."""
    import openvino as ov

    plain = ChatEngine(tiny_export, draft=DraftConfig(enabled=False))
    own = ChatEngine(tiny_export, draft=DraftConfig(enabled=False, exact=True))
    assert (plain.pipeline_mode, own.pipeline_mode) == ("plain", "assisted")
    model = own._decoder.target
    changed = 0
    for prompt in ("Write a short list of fruits.", "Say hello to the sea."):
        ids = [int(i) for i in plain._tokenizer.encode([plain.render([{"role": "user", "content": prompt}],
                                                                     None)]).input_ids.data[0]]
        inputs = og.TokenizedInputs(ov.Tensor(np.array([ids], np.int64)), ov.Tensor(np.ones((1, len(ids)), np.int64)))
        unpenalized = None
        for penalties in ({}, {"presence_penalty": 1.0}, {"frequency_penalty": 1.0}, {"repetition_penalty": 1.3},
                          {"repetition_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": 0.5}):
            settings = GenerationSettings(max_new_tokens=40, temperature=0.0, **penalties)
            answer = [int(t) for t in plain._pipe.generate(inputs, plain.generation_config(settings)).tokens[0]]
            unpenalized = unpenalized or answer
            changed += answer != unpenalized
            model.reset()
            logits, counts = model.feed(ids)[-1], Counter()
            for token in answer:
                row = penalize(logits, settings, set(ids), counts)
                best = int(row.argmax())
                assert best == token or row[best] - row[token] < NEAR_TIE, (prompt, penalties, len(counts))
                counts[token] += 1
                logits = model.feed([token])[-1]
    assert changed >= 4
