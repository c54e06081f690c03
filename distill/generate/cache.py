"""The per-request cache: one SQLite row per finished sample, keyed by `Request.key`.

Each completion is committed as soon as it arrives, so a run killed at any point (SIGKILL
included: SQLite's write-ahead log survives the process) keeps every request it finished, and
rerunning the same command sends only the others. The cache is plain SQLite: `sqlite3 FILE
"select count(*) from completions"` shows how far a run got.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from distill.generate.base import Completion


class RequestCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL loses nothing when the process dies, only on a power cut; FULL would fsync every row.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"
        )
        self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        for start in range(0, len(keys), 500):  # SQLite limits the number of bound parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(
                f"SELECT key, completion FROM completions WHERE key IN ({marks})", chunk
            ):
                found[key] = Completion(**json.loads(value))
        return found

    def put(self, key: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO completions (key, completion) VALUES (?, ?)",
            (key, json.dumps(completion.as_dict(), ensure_ascii=False)),
        )
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RequestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
