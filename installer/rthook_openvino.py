"""PyInstaller runtime hook: tell openvino-genai where the bundled openvino-tokenizers library is, and the exporter
(`cpmdesk export`, sparse-attention models) where the bundled cpmdesk op library is."""

import os
import sys
from pathlib import Path

_lib = Path(sys._MEIPASS) / "openvino_tokenizers" / "lib"
for _name in ("libopenvino_tokenizers.so", "libopenvino_tokenizers.dylib", "openvino_tokenizers.dll"):
    if (_lib / _name).is_file():
        os.environ.setdefault("OPENVINO_TOKENIZERS_PATH_GENAI", str(_lib / _name))
        os.environ.setdefault("OV_TOKENIZER_PREBUILD_EXTENSION_PATH", str(_lib / _name))
        break
for _name in ("libcpmdesk_ov_ops.so", "libcpmdesk_ov_ops.dylib", "cpmdesk_ov_ops.dll"):  # ov_ops.build names them
    _ops = Path(sys._MEIPASS) / "ov-ops" / _name
    if _ops.is_file():
        os.environ.setdefault("CPMDESK_OV_OPS_LIBRARY", str(_ops))
        break
