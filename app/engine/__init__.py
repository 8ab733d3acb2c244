"""The chat engine: openvino-genai under a small API that the GUI, the CLI and the tests share (no Qt here)."""

from app.engine.conversation import Conversation, Message, split_think_switch
from app.engine.engine import ChatEngine, ContextOverflowError, EngineError, Reply
from app.engine.model_folder import ModelFolderError, check_model_folder
from app.engine.settings import GenerationSettings
from app.engine.think_parser import Delta, ThinkParser

__all__ = ["ChatEngine", "ContextOverflowError", "Conversation", "Delta", "EngineError", "GenerationSettings",
           "Message", "ModelFolderError", "Reply", "ThinkParser", "check_model_folder", "split_think_switch"]
