"""Chats persist in SQLite: schema versioning, list/search/rename/delete, and no loss on a kill mid-answer."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest

from app.store import ChatStore
from app.store.schema import SCHEMA_VERSION


def test_new_database_is_at_the_current_schema_in_wal_mode(tmp_path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    store.close()
    db = sqlite3.connect(tmp_path / "chats.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_database_from_a_newer_version_is_refused(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "chats.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer cpmdesk"):
        ChatStore(tmp_path / "chats.sqlite3")


def test_older_database_is_migrated_and_keeps_its_chats(tmp_path) -> None:
    from app.store.schema import MIGRATIONS

    db = sqlite3.connect(tmp_path / "chats.sqlite3")
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO chats (title, created, updated) VALUES ('From version 1', 0, 0)")
    db.commit()
    db.close()
    store = ChatStore(tmp_path / "chats.sqlite3")
    assert [c.title for c in store.list_chats()] == ["From version 1"]
    store.set_setting("theme", "dark")
    assert store.get_setting("theme") == "dark"
    assert store._run("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_chats_list_search_rename_delete(tmp_path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    first = store.create_chat("Trip planning")
    second = store.create_chat("Code review")
    store.add_message(first, "user", "Which museums are open on Monday?")
    store.add_message(second, "user", "Why does this loop never end?")
    assert [c.id for c in store.list_chats()] == [second, first]
    assert [c.id for c in store.list_chats("museums")] == [first]
    assert [c.id for c in store.list_chats("Code")] == [second]
    store.rename_chat(first, "Paris trip")
    assert {c.title for c in store.list_chats()} == {"Paris trip", "Code review"}
    store.delete_chat(second)
    assert [c.id for c in store.list_chats()] == [first]
    assert store.messages(second) == []


def test_regenerate_removes_the_answer_and_what_follows(tmp_path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    chat = store.create_chat()
    store.add_message(chat, "user", "one")
    answer = store.add_message(chat, "assistant", "two")
    store.add_message(chat, "user", "three")
    store.delete_messages_from(chat, answer)
    assert [m.content for m in store.messages(chat)] == ["one"]


KILLED_WRITER = """
import sys
from pathlib import Path
from app.engine import ChatEngine, GenerationSettings
from app.store import ChatStore
from app.store.answer_recorder import AnswerRecorder

store = ChatStore(Path(sys.argv[1]))
engine = ChatEngine(Path(sys.argv[2]))
chat = store.create_chat("Counting")
store.add_message(chat, "user", "Count from 1 to 500.")
conversation = store.conversation(chat)
recorder = AnswerRecorder(store, chat)
seen = 0
def on_delta(delta):
    global seen
    recorder(delta)
    seen += 1
    if seen == 40:
        print("STREAMING", flush=True)
engine.generate(conversation, GenerationSettings(max_new_tokens=4000, ignore_eos=True), on_delta=on_delta)
print("FINISHED", flush=True)
"""


@pytest.mark.slow
def test_kill_mid_answer_keeps_the_partial_answer(default_model, tmp_path) -> None:
    database = tmp_path / "chats.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(database), str(default_model)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "STREAMING"
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    store = ChatStore(database)
    assert store.interrupted_on_open == 1
    chat = store.list_chats()[0]
    user, answer = store.messages(chat.id)
    assert user.content == "Count from 1 to 500."
    assert answer.role == "assistant" and answer.status == "interrupted"
    assert len(answer.content) > 20, answer.content  # what streamed before the kill (≤ 0.1 s behind)
    assert store.conversation(chat.id).messages[-1].content == answer.content
