"""Sandbox state on disk: orders, used payment codes, issued wallet codes, the clock offset.

One SQLite file (`orders.sqlite` in the state dir, WAL mode) so the sandbox survives the
terminal's crashes and its own restarts. Rows hold JSON records; `state.OrderBook` owns their
meaning and calls this module inside its lock, one transaction per request.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

ORDERS_DB = "orders.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (out_trade_no TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS used_codes (auth_code TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS wallet (auth_code TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OrderStore:
    """The SQLite file; not thread-safe by itself (the order book's lock serialises use)."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database.

        Raises:
            sqlite3.Error: the file cannot be opened or is not a sandbox database.
        """
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def save_order(self, out_trade_no: str, record: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO orders (out_trade_no, record) VALUES (?, ?)",
            (out_trade_no, record),
        )

    def orders(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record FROM orders ORDER BY rowid")
        return [json.loads(record) for (record,) in rows]

    def add_used_code(self, auth_code: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO used_codes (auth_code) VALUES (?)", (auth_code,))

    def used_codes(self) -> set[str]:
        return {code for (code,) in self._db.execute("SELECT auth_code FROM used_codes")}

    def save_wallet_code(self, auth_code: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO wallet (auth_code, record) VALUES (?, ?)",
            (auth_code, json.dumps(record)),
        )

    def drop_wallet_code(self, auth_code: str) -> None:
        self._db.execute("DELETE FROM wallet WHERE auth_code = ?", (auth_code,))

    def wallet_codes(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT auth_code, record FROM wallet")
        return {code: json.loads(record) for code, record in rows}

    def get_meta(self, name: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def clear(self) -> None:
        """Forget every order and code (the clock offset stays: time does not run back)."""
        for table in ("orders", "used_codes", "wallet"):
            self._db.execute(f"DELETE FROM {table}")  # fixed table names, no input
