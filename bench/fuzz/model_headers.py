"""Fuzz the model-file readers: safetensors headers and rows (export/tensor_reader.py), shard indexes, GGUF
metadata, tensors and the tokenizer rebuilt from it (export/tensor_reader.py, export/gguf_source.py).

    .venv/bin/python bench/fuzz/model_headers.py bench/fuzz/corpus/model_headers -max_total_time=600 -timeout=20 \
        -rss_limit_mb=3072

The first input byte picks the reader (safetensors file, shard index, GGUF file), the rest is the file. The reader
is opened and its small tensors read as the exporter reads them; anything other than an ExportError (one line with
the fix) is a crash, as are a hang and a huge allocation (a header claiming a 10 TB tensor must be refused without
allocating). `python bench/fuzz/model_headers.py --seeds DIR` writes the seed corpus.
"""

from __future__ import annotations

import json
import math
import shutil
import sys

from common import REPO, run, scratch

_WORK = scratch()
_KINDS = ("safetensors", "index", "gguf")


def _read_some(reader) -> None:
    """Read tensors as the exporter does: small ones whole, big ones a couple of rows."""
    from export.tensor_reader import read_tensor

    for name in reader.names()[:8]:
        shape = reader.shape(name)
        if math.prod(shape) <= 4096:
            read_tensor(reader, name)
        elif shape:
            reader.rows(name, 0, min(shape[0], 2))


def test_one(data: bytes) -> None:
    """Open one input with the reader its first byte picks; ExportError is the only accepted failure."""
    from export.errors import ExportError
    from export.gguf_source import write_tokenizer
    from export.tensor_reader import GGUFTensorReader, SafetensorsReader, shard_files

    if not data:
        return
    kind = _KINDS[data[0] % len(_KINDS)]
    folder = _WORK / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        if kind == "safetensors":
            (folder / "model.safetensors").write_bytes(data[1:])
            _read_some(SafetensorsReader(folder))
        elif kind == "index":
            (folder / "model.safetensors.index.json").write_bytes(data[1:])
            (folder / "model-00001-of-00001.safetensors").write_bytes(b"")
            shard_files(folder, "model.safetensors.index.json", "*.safetensors")
        else:
            path = folder / "model.gguf"
            path.write_bytes(data[1:])
            reader = GGUFTensorReader(path)
            _read_some(reader)
            field = reader._reader.fields.get("tokenizer.ggml.model")
            if field is not None and field.contents() == "gpt2":  # others go to transformers' own GGUF reader
                write_tokenizer(path, folder / "tokenizer")
    except ExportError:
        pass


def write_seeds(target) -> None:
    """A small safetensors file (f32, f16, bf16), a shard index and a small llama GGUF with a byte-level BPE."""
    from pathlib import Path

    import numpy as np
    from safetensors.numpy import save_file

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    file = _WORK / "seed.safetensors"
    save_file({"model.embed_tokens.weight": rng.standard_normal((8, 4)).astype(np.float32),
               "model.norm.weight": np.ones(4, np.float16)}, str(file))
    (target / "safetensors").write_bytes(b"\x00" + file.read_bytes())
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
                         "__metadata__": {"format": "pt"}}).encode()
    (target / "safetensors-bf16").write_bytes(b"\x00" + len(header).to_bytes(8, "little") + header + bytes(8))
    index = {"metadata": {"total_size": 8}, "weight_map": {"w": "model-00001-of-00001.safetensors"}}
    (target / "index").write_bytes(b"\x01" + json.dumps(index).encode())
    (target / "gguf").write_bytes(b"\x02" + _gguf_seed().read_bytes())


def _gguf_seed():
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    path = _WORK / "seed.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_embedding_length(32)
    writer.add_feed_forward_length(64)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_context_length(128)
    writer.add_layer_norm_rms_eps(1e-5)
    tokens = ["a", "b", "ab", "<|end|>"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([1, 1, 1, 3])
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(3)
    writer.add_chat_template("{{ messages[0]['content'] }}")
    rng = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", rng.standard_normal((4, 32)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(32, np.float32))
    q = rng.standard_normal((32, 32)).astype(np.float32)
    q8 = quantize(q, GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.attn_q.weight", q8, raw_shape=q8.shape, raw_dtype=GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.attn_k.weight", rng.standard_normal((16, 32)).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _instrumented() -> None:
    import gguf  # noqa: F401

    import export.errors
    import export.gguf_header
    import export.gguf_source
    import export.tensor_reader  # noqa: F401


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seeds"]:
        write_seeds(sys.argv[2] if len(sys.argv) > 2 else REPO / "bench" / "fuzz" / "corpus" / "model_headers")
    else:
        run(test_one, _instrumented)
