"""Deletion that deletes: after each kind of deletion the text is found nowhere in the database files' bytes
(the .sqlite3 file, its -wal and -shm), and what was not deleted is still there."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QMessageBox

from app.app_settings import AppSettings
from app.docs.blocks import Chunk
from app.docs.forget import remove_documents
from app.docs.schema import SCHEMA_VERSION as DOCS_SCHEMA_VERSION
from app.docs.store import DocStore
from app.gui.main_window import MainWindow
from app.store import ChatStore

FILLER = "An ordinary sentence about the weather and the garden. " * 40  # several pages, so deletions free some


def on_disk(folder: Path, name: str) -> bytes:
    """Every byte of the database `name` in `folder`: the file, its write-ahead log and its shared memory."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob(f"{name}*")) if p.is_file())


def found(folder: Path, name: str, marker: str) -> bool:
    """The marker as written, or lowercased (the keyword index keeps words lowercased)."""
    data = on_disk(folder, name)
    return marker.encode() in data or marker.lower().encode() in data


def _chat(store: ChatStore, title: str, *texts: str) -> int:
    chat = store.create_chat(title)
    for i, text in enumerate(texts):
        store.add_message(chat, "user" if i % 2 == 0 else "assistant", text)
    return chat


def test_store_erases_a_deleted_chat_edited_and_regenerated_messages(tmp_path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    assert store._run("PRAGMA secure_delete").fetchone()[0] == 1
    assert store._run("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    kept = _chat(store, "Kept", FILLER, "The kept answer KEPT-MARKER-1")
    gone = _chat(store, "Gone", "my account number is DELETED-CHAT-7731 " + FILLER, "noted DELETED-CHAT-7731")
    edited = _chat(store, "Edited", "first question", "first answer")
    original = store.add_message(edited, "user", "original wording EDITED-MESSAGE-5512 " + FILLER)
    store.add_message(edited, "assistant", "answer to the original EDITED-ANSWER-9043")
    regenerated = _chat(store, "Regenerated", "tell me a secret")
    answer = store.add_message(regenerated, "assistant", "the old answer REGENERATED-8820 " + FILLER)
    for marker in ("DELETED-CHAT-7731", "EDITED-MESSAGE-5512", "EDITED-ANSWER-9043", "REGENERATED-8820"):
        assert found(tmp_path, "chats.sqlite3", marker), "the test must see the text before deleting it"

    store.delete_chat(gone)
    store.delete_messages_from(edited, original)  # Edit: the message and what follows go, the new text is added
    store.add_message(edited, "user", "new wording")
    store.delete_messages_from(regenerated, answer)  # Regenerate: the answer goes
    for marker in ("DELETED-CHAT-7731", "EDITED-MESSAGE-5512", "EDITED-ANSWER-9043", "REGENERATED-8820"):
        assert not found(tmp_path, "chats.sqlite3", marker), f"{marker} is still in the database files"
    assert (tmp_path / "chats.sqlite3-wal").stat().st_size == 0
    assert found(tmp_path, "chats.sqlite3", "KEPT-MARKER-1")
    assert [m.content for m in store.messages(kept)][-1] == "The kept answer KEPT-MARKER-1"
    assert [m.content for m in store.messages(edited)] == ["first question", "first answer", "new wording"]
    assert [m.content for m in store.messages(regenerated)] == ["tell me a secret"]
    store.close()
    reopened = ChatStore(tmp_path / "chats.sqlite3")
    assert sorted(c.title for c in reopened.list_chats()) == ["Edited", "Kept", "Regenerated"]
    reopened.close()


def test_a_database_made_before_is_rebuilt_for_incremental_vacuum_and_keeps_its_chats(tmp_path) -> None:
    from app.store.schema import MIGRATIONS, SCHEMA_VERSION

    db = sqlite3.connect(tmp_path / "chats.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript("".join(MIGRATIONS) + f"PRAGMA user_version = {SCHEMA_VERSION};")
    db.execute("INSERT INTO chats (title, created, updated) VALUES ('Old chat', 0, 0)")
    db.execute("INSERT INTO messages (chat_id, role, content, created, updated) VALUES (1, 'user', ?, 0, 0)",
               ("OLD-CHAT-TEXT-3310 " + FILLER,))
    db.commit()
    assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    db.close()
    store = ChatStore(tmp_path / "chats.sqlite3")
    assert store._run("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert [m.content[:18] for m in store.messages(1)] == ["OLD-CHAT-TEXT-3310"]
    store.delete_chat(1)
    assert not found(tmp_path, "chats.sqlite3", "OLD-CHAT-TEXT-3310")
    store.close()


def test_a_reset_system_prompt_is_erased(tmp_path) -> None:
    store = ChatStore(tmp_path / "chats.sqlite3")
    settings = AppSettings(system_prompt="You are my lawyer; my case is PROMPT-MARKER-6402. " + FILLER)
    settings.save(store)
    assert AppSettings.load(store).system_prompt.startswith("You are my lawyer")
    assert found(tmp_path, "chats.sqlite3", "PROMPT-MARKER-6402")
    settings.system_prompt = ""  # Settings: the prompt cleared
    settings.save(store)
    assert not found(tmp_path, "chats.sqlite3", "PROMPT-MARKER-6402")
    assert AppSettings.load(store).system_prompt == ""

    AppSettings(system_prompt="Another prompt PROMPT-MARKER-1187").save(store)
    store.delete_all_settings()  # Privacy & data: Reset settings
    assert store.count_settings() == 0 and not found(tmp_path, "chats.sqlite3", "PROMPT-MARKER-1187")
    store.close()


def _window(qtbot, data: Path) -> MainWindow:
    store = ChatStore(data / "chats.sqlite3")
    window = MainWindow(store, None, app_settings=AppSettings.load(store))
    qtbot.addWidget(window, before_close_func=lambda w: w.threads.wait_all())
    window.show()
    return window


def test_sidebar_delete_asks_first_and_erases_the_chat(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path)
    kept = _chat(window.store, "Holiday", "Where to go in May? KEPT-CHAT-2290")
    gone = _chat(window.store, "Diagnosis", "my diagnosis is SIDEBAR-MARKER-4418 " + FILLER, "I see.")
    window.chats.refresh()
    window.select_chat(gone)

    window.chats.delete_button.click()
    box = window.chats.confirmation
    assert box.isVisible() and "Diagnosis" in box.text() and "cannot be undone" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert {c.id for c in window.store.list_chats()} == {kept, gone} and window.chats.list.count() == 2
    assert window.chat_id == gone and found(tmp_path, "chats.sqlite3", "SIDEBAR-MARKER-4418")

    window.chats.delete_button.click()
    window.chats.confirmation.button(QMessageBox.StandardButton.Yes).click()
    assert [c.id for c in window.store.list_chats()] == [kept] and window.chats.ids() == [kept]
    assert window.chat_id == kept
    assert not found(tmp_path, "chats.sqlite3", "SIDEBAR-MARKER-4418")
    assert found(tmp_path, "chats.sqlite3", "KEPT-CHAT-2290")


# documents ---------------------------------------------------------------------------------------------------

LEGACY_DOCS_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL DEFAULT -1,
    mtime_ns INTEGER NOT NULL DEFAULT -1, sha256 TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'indexed', 'skipped')),
    pending INTEGER NOT NULL DEFAULT 1, message TEXT NOT NULL DEFAULT '', pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0, embedder TEXT NOT NULL DEFAULT '', updated REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, page INTEGER, heading TEXT NOT NULL DEFAULT '', text TEXT NOT NULL,
    vector BLOB NOT NULL, UNIQUE (file_id, ord));
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading) VALUES ('delete', old.id, old.text, old.heading);
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
"""  # the unversioned layout (user_version 0) of the releases before the document index was versioned


def _index(store: DocStore, texts: dict[str, str]) -> None:
    """Each file as 20 passages (one transaction, so one keyword-index segment, each), with stand-in vectors."""
    store.queue(list(texts))
    for row in store.files():
        if row.path in texts:
            chunks = [Chunk(i, f"Passage {i}: {texts[row.path]}", i + 1, "Summary") for i in range(20)]
            store.replace_chunks(row.id, 100, 1, "sha", 20, chunks, np.eye(20, 8, dtype=np.float32), "test")


def test_removed_document_leaves_no_text_in_either_database(tmp_path) -> None:
    docs = DocStore(tmp_path / "docs.sqlite3")
    assert docs._all("PRAGMA user_version")[0][0] == DOCS_SCHEMA_VERSION
    secret, other = str(tmp_path / "medical.md"), str(tmp_path / "garden.md")
    _index(docs, {secret: "The patient Quorvexlandia has an allergy to penicillin. " + FILLER})
    _index(docs, {other: "Tomatoes want sun and water every morning. " + FILLER})
    _index(docs, {str(tmp_path / f"extra{i}.md"): "More ordinary words about cooking. " for i in range(3)})
    chats = ChatStore(tmp_path / "chats.sqlite3")
    chat = _chat(chats, "Docs", "Who is allergic?")
    sources = [{"n": 1, "path": secret, "page": 1, "heading": "Summary", "cosine": 0.9, "cited": True,
                "matched": True, "text": "The patient Quorvexlandia has an allergy to penicillin."},
               {"n": 2, "path": other, "page": 1, "heading": "Summary", "cosine": 0.2, "cited": False,
                "matched": False, "text": "Tomatoes want sun and water every morning."}]
    answer = chats.start_answer(chat)
    chats.finish_answer(answer, "A patient is [1].", "", "done", {"sources": sources, "tokens": 5})
    assert found(tmp_path, "docs.sqlite3", "Quorvexlandia") and found(tmp_path, "chats.sqlite3", "Quorvexlandia")

    assert remove_documents(docs, chats, [secret]) == [secret]
    assert not found(tmp_path, "docs.sqlite3", "Quorvexlandia"), "the passages must leave the index's files"
    assert not found(tmp_path, "docs.sqlite3", "penicillin")
    assert not found(tmp_path, "chats.sqlite3", "Quorvexlandia"), "the copies in stored sources must go too"
    assert docs.keyword_search("quorvexlandia", 5) == [] and len(docs.keyword_search("tomatoes", 50)) == 20
    assert [f.path for f in docs.files()][:1] == [other]
    stored = chats.messages(chat)[-1]
    assert stored.content == "A patient is [1]." and stored.metrics["tokens"] == 5
    assert stored.metrics["sources"][0] == {"n": 1, "path": secret, "page": 1, "cosine": 0.9, "cited": True,
                                            "matched": True, "text": "", "heading": "", "removed": True}
    assert stored.metrics["sources"][1] == sources[1], "other documents' sources are kept"
    docs.close()
    chats.close()


def test_reindexing_a_changed_document_erases_its_old_text(tmp_path) -> None:
    docs = DocStore(tmp_path / "docs.sqlite3")
    path = str(tmp_path / "notes.md")
    _index(docs, {path: "The old draft mentions Vorpalquincunx twice. " + FILLER})
    _index(docs, {str(tmp_path / f"other{i}.md"): "Unrelated words about bicycles. " for i in range(3)})
    assert found(tmp_path, "docs.sqlite3", "Vorpalquincunx")
    _index(docs, {path: "The new draft is about something else. " + FILLER})
    assert found(tmp_path, "docs.sqlite3", "Vorpalquincunx"), "kept until the indexing run ends"
    assert docs.erase_replaced() and not docs.erase_replaced()
    assert not found(tmp_path, "docs.sqlite3", "Vorpalquincunx")
    docs.close()


def test_docs_database_from_before_versioning_is_migrated_without_loss(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "docs.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(LEGACY_DOCS_SCHEMA)
    db.execute("INSERT INTO files (path, status, pending, chunks) VALUES ('/old/report.md', 'indexed', 0, 1)")
    db.execute("INSERT INTO chunks (file_id, ord, page, heading, text, vector) VALUES (1, 0, 2, 'Budget', "
               "'The budget for the lighthouse is 140 EUR.', ?)", (np.ones(4, np.float32).tobytes(),))
    db.execute("INSERT INTO files (path, status, pending, message) VALUES ('/old/scan.pdf', 'skipped', 0, 'image')")
    db.execute("UPDATE meta SET value = '7' WHERE key = 'generation'")
    db.commit()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()

    store = DocStore(tmp_path / "docs.sqlite3")
    assert store._all("PRAGMA user_version")[0][0] == DOCS_SCHEMA_VERSION
    assert store._all("PRAGMA auto_vacuum")[0][0] == 2
    assert [(f.path, f.status, f.pending, f.message) for f in store.files()] == [
        ("/old/report.md", "indexed", False, ""), ("/old/scan.pdf", "skipped", False, "image")]
    assert store.generation() == 7
    [chunk_id] = store.keyword_search("lighthouse", 5)
    assert store.chunks_by_id([chunk_id])[chunk_id].text == "The budget for the lighthouse is 140 EUR."
    assert store.document_chunks("/old/report.md")[0].heading == "Budget"
    store.close()
    assert DocStore(tmp_path / "docs.sqlite3").files()[0].path == "/old/report.md"  # opening again changes nothing


def test_docs_database_from_a_newer_cpmdesk_is_refused(tmp_path) -> None:
    from app.sqlite_schema import NewerSchemaError

    db = sqlite3.connect(tmp_path / "docs.sqlite3")
    db.execute(f"PRAGMA user_version = {DOCS_SCHEMA_VERSION + 1}")
    db.close()
    try:
        DocStore(tmp_path / "docs.sqlite3")
    except NewerSchemaError as err:
        assert "document index is from a newer cpmdesk" in str(err)
    else:
        raise AssertionError("a newer document index must be refused")


def test_deleting_the_document_index_erases_the_passages_copied_into_chats(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path)
    chat = _chat(window.store, "Docs", "What does the contract say?")
    answer = window.store.start_answer(chat)
    sources = [{"n": 1, "path": "/home/me/contract.pdf", "page": 3, "heading": "Terms", "cosine": 0.8,
                "cited": True, "matched": False, "text": "The tenant Zephyrinaldo pays 900 EUR."}]
    window.store.finish_answer(answer, "The rent is 900 EUR [1].", "", "done", {"sources": sources})
    window.docs.library.store.queue(["/home/me/contract.pdf"])
    page = window.open_privacy()
    assert found(tmp_path, "chats.sqlite3", "Zephyrinaldo")
    box = page.ask_delete("docs_index")
    box.button(QMessageBox.StandardButton.Yes).click()
    assert not list(tmp_path.glob("docs.sqlite3*"))
    assert not found(tmp_path, "chats.sqlite3", "Zephyrinaldo")
    [source] = window.store.messages(chat)[-1].metrics["sources"]
    assert source["removed"] and source["text"] == "" and source["path"] == "/home/me/contract.pdf"
    dialog = window.docs.open_source(window.store.messages(chat), f"{answer}:1")
    assert "deleted" in dialog.text.toPlainText()


def test_sources_are_scrubbed_only_where_they_match(tmp_path) -> None:
    from app.store.sources import scrub_sources

    metrics = {"sources": [{"n": 1, "path": "/a", "text": "x", "quote": "y", "spans": [[0, 1]], "cited": True},
                           {"n": 2, "path": "/b", "text": "z"}], "note": "read whole"}
    scrubbed = scrub_sources(metrics, {"/a"})
    assert scrubbed == {"sources": [{"n": 1, "path": "/a", "cited": True, "text": "", "heading": "",
                                     "removed": True}, {"n": 2, "path": "/b", "text": "z"}], "note": "read whole"}
    assert scrub_sources(scrubbed, {"/a"}) is None and scrub_sources({"tokens": 3}, None) is None
    assert json.dumps(scrub_sources(metrics, None)).count('"removed": true') == 2


def test_cli_docs_remove_erases_the_document_from_both_databases(tmp_path) -> None:
    import os
    import subprocess
    import sys

    docs = DocStore(tmp_path / "docs.sqlite3")
    secret = tmp_path / "diary.md"
    _index(docs, {str(secret): "Dear diary, Plimsoulbertine came to visit. " + FILLER})
    _index(docs, {str(tmp_path / f"other{i}.md"): "Ordinary words about trains. " for i in range(3)})
    docs.close()
    chats = ChatStore(tmp_path / "chats.sqlite3")
    chat = _chat(chats, "Docs", "Who came?")
    answer = chats.start_answer(chat)
    chats.finish_answer(answer, "A friend [1].", "", "done", {"sources": [
        {"n": 1, "path": str(secret), "page": 1, "heading": "", "text": "Plimsoulbertine came to visit."}]})
    chats.close()
    env = {**os.environ, "CPMDESK_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "app", "docs", "remove", str(secret), str(tmp_path / "nope.md")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"removed: {secret}", f"not in the index: {tmp_path / 'nope.md'}"]
    assert not found(tmp_path, "docs.sqlite3", "Plimsoulbertine")
    assert not found(tmp_path, "chats.sqlite3", "Plimsoulbertine")
    reopened = ChatStore(tmp_path / "chats.sqlite3")
    assert reopened.messages(chat)[-1].metrics["sources"][0]["removed"] is True
    reopened.close()
