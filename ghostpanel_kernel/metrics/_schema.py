"""The SQLite schema of the metrics store (docs/metrics.md says why SQLite).

A *series* is one metric of one container, its labels stored once (in ``series``).
Raw samples are one row per sampling round, with the round's series ids and values
packed into blobs (``_chunks.py``); rollups are one row per (bucket, series), keyed
``WITHOUT ROWID`` by ``(time, series)`` so a time range is one contiguous read.
"""

from __future__ import annotations

__all__ = ["ROLLUP_TABLES", "SCHEMA"]

#: Rollup tables and their bucket width in seconds, finest first.
ROLLUP_TABLES: tuple[tuple[str, float], ...] = (("minute", 60.0), ("hour", 3600.0))

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    container TEXT NOT NULL,
    container_id TEXT NOT NULL,
    image TEXT NOT NULL,
    metric TEXT NOT NULL,
    UNIQUE (environment, container_id, metric, container, image)
);
CREATE TABLE IF NOT EXISTS raw (
    time REAL NOT NULL,
    series BLOB NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_by_time ON raw (time);
CREATE TABLE IF NOT EXISTS minute (
    time REAL NOT NULL,
    series INTEGER NOT NULL,
    mean REAL, max REAL, min REAL, count INTEGER NOT NULL,
    PRIMARY KEY (time, series)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hour (
    time REAL NOT NULL,
    series INTEGER NOT NULL,
    mean REAL, max REAL, min REAL, count INTEGER NOT NULL,
    PRIMARY KEY (time, series)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    time REAL NOT NULL,
    environment TEXT NOT NULL,
    container TEXT NOT NULL,
    container_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    exit_code INTEGER,
    health TEXT
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""
