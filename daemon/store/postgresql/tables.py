"""The PostgreSQL state schema: the SQLite state tables, mirrored, plus the shared quota.

The tables and columns are :data:`~interlock.store.sqlite.tables.STATE`'s (times as
UTC ISO text, structures as JSON text, so the same queries answer on both), with
PostgreSQL's types; ``component_runs`` adds ``seq`` where SQLite has its rowid.
The quota tables exist only here: several daemons share one count. So does ``events``:
the leader's events as JSON, in the order published, for the standbys' ``watch`` and
dashboard (the newest :data:`EVENTS_KEPT` rows are kept).
"""

from __future__ import annotations

#: The schema this code writes; ``schema_version`` holds the database's.
VERSION = 2
#: ``MIGRATIONS[i]`` takes version ``i`` to ``i + 1`` (0 is an empty database); 1 to 2
#: adds ``events``, which :data:`SCHEMA` creates.
MIGRATIONS: tuple[str, ...] = ("", "")
#: The ``events`` rows kept: a standby further behind than this skips ahead.
EVENTS_KEPT = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s DOUBLE PRECISION,
    components TEXT,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS component_runs (
    run_id TEXT NOT NULL,
    component TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s DOUBLE PRECISION,
    records BIGINT,
    attempts BIGINT,
    error TEXT,
    fingerprint TEXT,
    inputs TEXT,
    quality TEXT,
    metrics TEXT,
    seq BIGSERIAL NOT NULL,
    PRIMARY KEY (run_id, component)
);
CREATE INDEX IF NOT EXISTS component_runs_by_component ON component_runs (component, started_at);
CREATE INDEX IF NOT EXISTS component_runs_by_time ON component_runs (started_at);
CREATE TABLE IF NOT EXISTS component_state (
    component TEXT PRIMARY KEY,
    last_started_at TEXT,
    last_status TEXT,
    last_finished_at TEXT,
    last_success_at TEXT,
    fingerprint TEXT,
    published_at TEXT,
    records BIGINT,
    inputs TEXT,
    last_error TEXT,
    memory TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quota_days (day TEXT PRIMARY KEY, used BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS quota_calls (
    day TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (day, endpoint)
);
CREATE TABLE IF NOT EXISTS quota_rate (
    family TEXT PRIMARY KEY,
    spent DOUBLE PRECISION[] NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""

#: What each table holds, for the README and ``schema_version``'s readers.
TABLES = (
    "runs",
    "component_runs",
    "component_state",
    "meta",
    "quota_days",
    "quota_calls",
    "quota_rate",
    "events",
)
