"""Chats on disk: SQLite (WAL) in the data folder, written as answers stream, never lost on a crash."""

from app.store.chat_store import ChatStore, ChatSummary, StoredMessage, StoreError

__all__ = ["ChatStore", "ChatSummary", "StoreError", "StoredMessage"]
