"""Documents benchmark: indexing throughput (pages/s, chunks/s) and query latency at ~1k and ~10k chunks.

Builds a synthetic PDF corpus (deterministic text, ~2 chunks a page), indexes it with the real embedding model
into a fresh docs database, and times hybrid retrieval. Prints JSON lines.

    PYTHONPATH=$PWD flock /tmp/cpmdesk-heavy.lock .venv/bin/python bench/docs.py [--small 1000] [--large 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORK = REPO / ".cache" / "bench" / "docs"
PAGES_PER_PDF = 20
_WORDS = ("harbour crane cargo vessel pilot tide customs ledger invoice shipment copper wool tea grain timber route "
          "schedule inspection engine budget committee meeting report garden prize recipe oven ferry island pier "
          "weather season north south annual record contract supplier warehouse audit river bridge station signal "
          "lantern market council school library museum archive survey map compass")
QUESTIONS = ("How many tonnes can the crane lift?", "Who inspected the warehouse?", "When does the ferry leave?",
             "What did the audit of the ledger find?", "Which supplier delivered copper?", "What is the budget?",
             "Where is the museum archive?", "Who won the garden prize?", "What does the contract say about wool?",
             "When is the council meeting?")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def sentence(rng: random.Random) -> str:
    vocabulary = _WORDS.split()
    words = [rng.choice(vocabulary) for _ in range(rng.randint(8, 16))]
    return (" ".join(words) + f" {rng.randint(1, 999)}.").capitalize()


def write_pdfs(folder: Path, pages: int, seed: int) -> int:
    """PDFs of PAGES_PER_PDF pages, three ~70-word paragraphs a page (≈ 2 chunks); returns the page count."""
    from fpdf import FPDF

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for number in range(0, pages, PAGES_PER_PDF):
        pdf = FPDF()
        pdf.set_font("Helvetica", size=10)
        for _ in range(min(PAGES_PER_PDF, pages - number)):
            pdf.add_page()
            for _ in range(3):
                pdf.multi_cell(0, 5, " ".join(sentence(rng) for _ in range(6)))
                pdf.ln(5)
            written += 1
        pdf.output(str(folder / f"doc_{seed}_{number // PAGES_PER_PDF:04d}.pdf"))
    return written


def index(indexer, folder: Path, label: str, chunks_before: int) -> dict:
    from app.docs.extract import extract

    embedder = indexer.embedder
    embedded_before = embedder.texts_embedded
    started = time.perf_counter()
    report = indexer.run([folder])
    seconds = time.perf_counter() - started
    extract_started = time.perf_counter()  # the same files again, text only: the share that is not embedding
    for pdf in sorted(folder.glob("*.pdf"))[:10]:
        extract(pdf)
    extract_per_file = (time.perf_counter() - extract_started) / min(10, len(report.indexed) or 1)
    record = {"bench": "docs_index", "corpus": label, "files": len(report.indexed), "pages": report.pages,
              "chunks": report.chunks, "index_chunks_total": chunks_before + report.chunks,
              "seconds": round(seconds, 2), "pages_per_s": round(report.pages / seconds, 2),
              "chunks_per_s": round(report.chunks / seconds, 2),
              "extract_share": round(extract_per_file * len(report.indexed) / seconds, 3),
              "texts_embedded": embedder.texts_embedded - embedded_before, "skipped": len(report.skipped)}
    emit(record)
    return record


def rescan(indexer, folder: Path, label: str) -> None:
    embedded = indexer.embedder.texts_embedded
    started = time.perf_counter()
    report = indexer.run([folder])
    emit({"bench": "docs_rescan_unchanged", "corpus": label, "files": len(report.unchanged),
          "indexed": len(report.indexed), "texts_embedded": indexer.embedder.texts_embedded - embedded,
          "seconds": round(time.perf_counter() - started, 3)})


def query_latency(store, embedder, label: str, repeats: int) -> None:
    from app.docs import retrieval

    store.vectors()  # the first query after a change loads the matrix: timed apart
    cold_started = time.perf_counter()
    store._matrix = None
    retrieval.retrieve(store, embedder, QUESTIONS[0])
    cold_ms = (time.perf_counter() - cold_started) * 1000
    totals, embeds, vectors, keywords = [], [], [], []
    for _ in range(repeats):
        for question in QUESTIONS:
            t0 = time.perf_counter()
            query = embedder.embed_query(question)
            t1 = time.perf_counter()
            _ids, matrix = store.vectors()
            _ = (matrix @ query).argsort()[::-1][: retrieval.CANDIDATES]
            t2 = time.perf_counter()
            store.keyword_search(retrieval.keyword_query(question), retrieval.CANDIDATES)
            t3 = time.perf_counter()
            retrieval.retrieve(store, embedder, question)
            t4 = time.perf_counter()
            embeds.append(t1 - t0)
            vectors.append(t2 - t1)
            keywords.append(t3 - t2)
            totals.append(t4 - t3)

    def ms(values: list[float], q: float = 0.5) -> float:
        return round(statistics.quantiles(values, n=100)[int(q * 100) - 1] * 1000, 2) if len(values) > 1 else 0.0

    emit({"bench": "docs_query", "corpus": label, "chunks": store.chunk_count(), "queries": len(totals),
          "retrieve_ms_p50": ms(totals), "retrieve_ms_p95": ms(totals, 0.95), "embed_query_ms_p50": ms(embeds),
          "vector_search_ms_p50": ms(vectors), "fts_bm25_ms_p50": ms(keywords),
          "cold_first_query_ms": round(cold_ms, 1),
          "vector_share": round(statistics.median(vectors) / statistics.median(totals), 3)})


def embed_batches(embedder, sizes: tuple[int, ...] = (1, 4, 8, 16, 32)) -> None:
    """Texts per inference call, side by side on the same 192 chunk-sized texts (ratio to the default)."""
    from app.docs import embedder as module

    rng = random.Random(0)
    texts = [" ".join(sentence(rng) for _ in range(rng.randint(4, 10))) for _ in range(192)]
    default = module.BATCH
    embedder.embed(texts[:16])  # warm-up
    rates = {}
    for _round in range(2):  # interleaved rounds: a load change on the machine hits every size alike
        for size in sizes:
            module.BATCH = size
            started = time.perf_counter()
            embedder.embed(texts)
            rates.setdefault(size, []).append(len(texts) / (time.perf_counter() - started))
    module.BATCH = default
    best = {size: max(values) for size, values in rates.items()}
    for size in sizes:
        emit({"bench": "docs_embed_batch", "batch": size, "chunks_per_s": round(best[size], 1),
              "vs_default": round(best[size] / best[default], 3), "default": size == default})


def corpus_label(chunks: int) -> str:
    return f"{chunks // 1000}k" if chunks >= 1000 else str(chunks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000, help="chunks in the first index (default 1000)")
    parser.add_argument("--large", type=int, default=10000, help="chunks in the grown index (default 10000)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the 10 questions per size")
    args = parser.parse_args()
    from app.docs.embedder import Embedder, ensure_embedding_model
    from app.docs.indexer import Indexer
    from app.docs.store import DocStore
    from app.privacy import disable_telemetry

    disable_telemetry()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    import os

    os.environ.setdefault("CPMDESK_DATA_DIR", str(REPO / ".cache" / "test-data"))
    embedder = Embedder(ensure_embedding_model(log=lambda m: print(m, file=sys.stderr)))
    store = DocStore(WORK / "docs.sqlite3")
    indexer = Indexer(store, lambda: embedder)
    embed_batches(embedder)
    small, large = corpus_label(args.small), corpus_label(args.large)
    write_pdfs(WORK / "small", args.small * 2 // 5, seed=1)  # ~2.5 chunks a page
    first = index(indexer, WORK / "small", small, 0)
    rescan(indexer, WORK / "small", small)
    query_latency(store, embedder, small, args.repeats)
    write_pdfs(WORK / "large", max(0, (args.large - first["index_chunks_total"]) * 2 // 5), seed=2)
    index(indexer, WORK / "large", large, first["index_chunks_total"])
    query_latency(store, embedder, large, args.repeats)
    emit({"bench": "docs_memory", "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
          "db_mib": round(sum(p.stat().st_size for p in WORK.glob("docs.sqlite3*")) / 2**20, 1)})
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
