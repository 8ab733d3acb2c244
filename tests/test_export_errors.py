"""Every bad input gets its one-line error with the fix, and leaves no output folder behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from export.errors import (
    CorruptWeightsError,
    MissingFilesError,
    OutputExistsError,
    TrustRemoteCodeError,
    UnsupportedArchitectureError,
)
from export.exporter import ExportRequest, run_export


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".complete"))
    return dst


def _assert_clean(out: Path) -> None:
    assert not out.exists(), f"{out} was left behind"
    assert not list(out.parent.glob(f".{out.name}.partial-*")), "a staging folder was left behind"


def _fails(source: Path | str, out: Path, error: type, *phrases: str, **request) -> str:
    with pytest.raises(error) as info:
        run_export(ExportRequest(str(source), out, **request))
    message = str(info.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message
    _assert_clean(out)
    return message


def test_unsupported_architecture_lists_supported(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    config["model_type"] = "gpt_bigcode"
    (src / "config.json").write_text(json.dumps(config))
    _fails(src, tmp_path / "out", UnsupportedArchitectureError, "gpt_bigcode", "llama", "minicpm", "qwen2")


def test_trust_remote_code_needed(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    config.update(model_type="my_custom_lm", auto_map={"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    (src / "config.json").write_text(json.dumps(config))
    _fails(src, tmp_path / "out", TrustRemoteCodeError, "--trust-remote-code")


def test_missing_config(tmp_path) -> None:
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", MissingFilesError, "config.json")


def test_missing_weights(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    (src / "model.safetensors").unlink()
    _fails(src, tmp_path / "out", MissingFilesError, "no weights")


def test_missing_tokenizer(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (src / name).unlink()
    _fails(src, tmp_path / "out", MissingFilesError, "tokenizer")


def test_missing_shard(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    _fails(src, tmp_path / "out", MissingFilesError, "model-00001-of-00002.safetensors")


def test_missing_source(tmp_path) -> None:
    _fails(tmp_path / "nowhere" / "model", tmp_path / "out", MissingFilesError, "No such file or folder")


def test_truncated_weights(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    weights = src / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    _fails(src, tmp_path / "out", CorruptWeightsError, "model.safetensors", "re-download")


def test_garbage_weights_header(tiny_llama, tmp_path) -> None:
    src = _copy(tiny_llama, tmp_path / "src")
    (src / "model.safetensors").write_bytes(b"\xff" * 64)
    _fails(src, tmp_path / "out", CorruptWeightsError, "corrupt")


def test_corrupt_gguf(tmp_path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 100)
    _fails(bad, tmp_path / "out", CorruptWeightsError, "GGUF")


def test_not_a_model_file(tmp_path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    _fails(bad, tmp_path / "out", MissingFilesError, ".gguf")


def test_non_empty_output_needs_force(tiny_llama, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--force"):
        run_export(ExportRequest(str(tiny_llama), out))
    assert (out / "keep.txt").read_text() == "mine"


def test_hub_unreachable_says_pass_a_folder(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
           "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens there: connection refused
    env.pop("HF_HUB_OFFLINE", None)
    result = subprocess.run([sys.executable, "-m", "export", "openbmb/MiniCPM4-0.5B", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Cannot reach the Hugging Face Hub" in errors[0] and "local folder" in errors[0]
    _assert_clean(tmp_path / "out")


def test_not_enough_disk(tiny_llama, tmp_path) -> None:
    """A real 2 MiB file system (tmpfs in a private mount namespace) is too small for the export."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available to make a small file system")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.decode().strip()}")
    small = tmp_path / "small"
    small.mkdir()
    script = (f"mount -t tmpfs -o size=2m tmpfs {small} && "
              f"{sys.executable} -m export {tiny_llama} {small}/out; echo rc=$?; ls -A {small}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert "rc=2" in result.stdout, result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "Not enough disk space" in error_lines[0], result.stderr
    assert "GiB is free" in error_lines[0]
    assert result.stdout.strip().endswith("rc=2"), "the small file system should be left empty"


def test_cli_prints_one_line_error_and_exit_code(tmp_path) -> None:
    (tmp_path / "src").mkdir()
    result = subprocess.run([sys.executable, "-m", "export", str(tmp_path / "src"), str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "config.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, phrase", [
    (["--group-size", "0"], "--group-size 0"),
    (["--ratio", "5"], "--ratio 5.0"),
    (["--scale-estimation"], "--dataset"),
])
def test_out_of_range_options_fail_before_reading_the_model(tiny_llama, tmp_path, options, phrase) -> None:
    result = subprocess.run([sys.executable, "-m", "export", str(tiny_llama), str(tmp_path / "out"), *options],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("backend", ["streaming", "optimum"])
@pytest.mark.parametrize(("change", "phrase"), [({"hidden_act": "fatrelu"}, "hidden_act 'fatrelu'"),
                                                ({"num_experts": 8, "num_experts_per_tok": 2}, "mixture-of-experts")])
def test_non_silu_or_moe_minicpm_refused(tiny_minicpm, tmp_path, backend, change, phrase) -> None:
    # MiniCPM-S (fatrelu) and MiniCPM-MoE share model_type "minicpm": folding them as SiLU would be another model.
    src = _copy(tiny_minicpm, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, **change}))
    _fails(src, tmp_path / "out", UnsupportedArchitectureError, phrase, "minicpm", backend=backend)


def test_minicpm_reference_and_fold_refuse_other_activations(tiny_minicpm, tmp_path) -> None:
    pytest.importorskip("torch")
    from export.minicpm import fold_to_llama
    from export.minicpm_reference import MiniCPMReference

    config = json.loads((tiny_minicpm / "config.json").read_text())
    with pytest.raises(UnsupportedArchitectureError, match="fatrelu"):
        MiniCPMReference({**config, "hidden_act": "fatrelu"})
    src = _copy(tiny_minicpm, tmp_path / "src")
    (src / "config.json").write_text(json.dumps({**config, "hidden_act": "fatrelu"}))
    with pytest.raises(UnsupportedArchitectureError, match="fatrelu"):
        fold_to_llama(src, tmp_path / "folded", dtype=__import__("torch").float32)
    assert not (tmp_path / "folded").exists()
