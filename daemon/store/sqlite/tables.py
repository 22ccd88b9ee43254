"""The state database (``<state_dir>/state.sqlite``) described column by column.

:data:`STATE` is what ``interlock schema state`` prints; ``tests/test_dataset_schema.py``
checks it against a database :func:`.schema.connect_writer` really creates.
"""

from __future__ import annotations

from interlock.store.tables import Database, Table, col

_ISO = "ISO 8601 text, UTC (+00:00)"
_JSON = "JSON text"
_RUN = col(
    "run_id", "TEXT", "The run's id (one per `interlock run` or scheduler release).", null=False
)

STATE = Database(
    name="state",
    meaning="The daemon's own record: runs, component outcomes, per-component state and "
    "small settings. Private to the service user (mode 0600); read it with "
    "`interlock history` / `interlock status` rather than directly.",
    file="<state_dir>/state.sqlite",
    version=1,
    migrations=(
        # 0 -> 1: version 0 is the same schema without a number; nothing to change.
        "",
    ),
    tables=(
        Table(
            "runs",
            "One row per run: a release of one or more components.",
            (
                col("run_id", "TEXT", "The run's id.", null=False),
                col("trigger", "TEXT", "What started it: schedule, manual, admin, ...", null=False),
                col("status", "TEXT", "running, ok, failed, interrupted, ...", null=False),
                col("started_at", "TEXT", "When the run started.", _ISO, null=False),
                col("finished_at", "TEXT", "When it finished; NULL while running.", _ISO),
                col("duration_s", "REAL", "Wall time of the run.", "seconds"),
                col("components", "TEXT", "Names of the components released.", _JSON + " list"),
                col("counts", "TEXT", "Components per final status.", _JSON + " object"),
            ),
            key=("run_id",),
        ),
        Table(
            "component_runs",
            "One row per component per run: its outcome.",
            (
                _RUN,
                col("component", "TEXT", "Component name.", null=False),
                col(
                    "status",
                    "TEXT",
                    "published, unchanged, failed, skipped, interrupted, ...",
                    null=False,
                ),
                col("reason", "TEXT", "Why it ended so (short code)."),
                col("started_at", "TEXT", "When the component started.", _ISO, null=False),
                col("finished_at", "TEXT", "When it finished.", _ISO),
                col("duration_s", "REAL", "Wall time of the component.", "seconds"),
                col("records", "INTEGER", "Records published (or seen).", "rows"),
                col("attempts", "INTEGER", "Attempts made (retries + 1).", "count"),
                col("error", "TEXT", "The error message, when it failed (secrets redacted)."),
                col("fingerprint", "TEXT", "Fingerprint of what it published or saw."),
                col("inputs", "TEXT", "Upstream fingerprints it ran on.", _JSON + " object"),
                col("quality", "TEXT", "Quality report.", _JSON + " object"),
                col("metrics", "TEXT", "Run metrics (fetch timings, sizes...).", _JSON + " object"),
            ),
            key=("run_id", "component"),
        ),
        Table(
            "component_state",
            "One row per component: what the scheduler needs to decide the next run.",
            (
                col("component", "TEXT", "Component name.", null=False),
                col("last_started_at", "TEXT", "Start of its latest run.", _ISO),
                col("last_status", "TEXT", "Status of its latest run."),
                col("last_finished_at", "TEXT", "End of its latest run.", _ISO),
                col("last_success_at", "TEXT", "End of its latest successful run.", _ISO),
                col("fingerprint", "TEXT", "Fingerprint of the live dataset."),
                col("published_at", "TEXT", "When the live dataset was published.", _ISO),
                col("records", "INTEGER", "Records in the live dataset.", "rows"),
                col(
                    "inputs",
                    "TEXT",
                    "Upstream fingerprints of the live dataset.",
                    _JSON + " object",
                ),
                col("last_error", "TEXT", "Latest error message (secrets redacted)."),
                col(
                    "memory",
                    "TEXT",
                    "What the component remembers between runs.",
                    _JSON + " object",
                ),
            ),
            key=("component",),
        ),
        Table(
            "meta",
            "Small daemon settings and books (paused components, quota, notifications).",
            (
                col("key", "TEXT", "Setting name.", null=False),
                col("value", "TEXT", "Its value.", _JSON, null=False),
            ),
            key=("key",),
        ),
    ),
)
