"""The chat engine: openvino-genai under a small API that the GUI, the CLI and the tests share (no Qt here)."""

from app.engine.model_folder import ModelFolderError, check_model_folder
from app.engine.session import ChatEngine, GenerationSettings, Reply

__all__ = ["ChatEngine", "GenerationSettings", "ModelFolderError", "Reply", "check_model_folder"]
