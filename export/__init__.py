"""cpmdesk-export: Hugging Face models (hub id, folder or GGUF) to validated OpenVINO IR folders.

Importing this package is cheap and torch-free; the heavy steps import torch lazily.
"""

from export.errors import ExportError

__all__ = ["ExportError"]
