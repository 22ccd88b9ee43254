"""The write path: a batch of events turned into a few ``executemany`` statements.

The history subscriber hands the store events in batches; each batch becomes one
transaction of at most a handful of statements, which keeps the cost per
scheduling decision in microseconds. Error, reason and quality text is masked on
the way in (defence in depth: it was masked where it was made), so no history row
holds a secret that an upstream echoed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock import events as ev
from interlock.secrets import mask, mask_all
from interlock.store.changes import component_state_changes
from interlock.store.sqlite.schema import to_json

INSERT_RUN = (
    "INSERT OR REPLACE INTO runs (run_id, trigger, status, started_at, components) "
    "VALUES (?, ?, 'running', ?, ?)"
)
FINISH_RUN = "UPDATE runs SET status=?, finished_at=?, duration_s=?, counts=? WHERE run_id=?"
END_COMPONENT = (
    "INSERT OR REPLACE INTO component_runs (run_id, component, status, reason, started_at, "
    "finished_at, duration_s, records, attempts, error, fingerprint, inputs, quality, metrics) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
#: Component-state fields that carry text from outside.
_TEXT_STATE = frozenset({"last_error"})


def _text(value: str | None) -> str | None:
    return None if value is None else mask(value)


def _json_text(value: Any) -> str | None:
    """``value`` as stored JSON, with any secret in its strings masked."""
    text = to_json(value)
    if text is not None and mask(text) != text:  # rare: walk it only when it holds one
        text = to_json(mask_all(value))
    return text


class EventBatch:
    """Turns a batch of events into a few ``executemany`` calls.

    Statements run in an order that respects every per-key dependency (a run's
    insert before its update, a run's components after the run), and the
    component-state changes of a batch are folded into one upsert per component.
    """

    def __init__(self) -> None:
        self.run_inserts: list[tuple[Any, ...]] = []
        self.ends: list[tuple[Any, ...]] = []
        self.run_updates: list[tuple[Any, ...]] = []
        self.state: dict[str, dict[str, Any]] = {}

    def add(self, e: ev.Event) -> None:
        """Fold one event into the batch."""
        # The same timestamp or inputs mapping lands in several columns: convert each
        # once per event (this runs for every event the scheduler emits).
        at = e.at.isoformat()
        done: dict[int, Any] = {id(e.at): at}
        if isinstance(e, ev.ComponentFinished):
            inputs = to_json(e.inputs)
            done[id(e.inputs)] = inputs
            self.ends.append(
                (
                    e.run_id,
                    e.component,
                    e.status,
                    _text(e.reason),
                    e.started_at.isoformat(),
                    at,
                    e.duration_s,
                    e.records,
                    e.attempts,
                    _text(e.error),
                    e.fingerprint,
                    inputs,
                    _json_text(e.quality),
                    _json_text(e.metrics),
                )
            )
        elif isinstance(e, ev.ComponentSkipped):
            self.ends.append(
                (
                    e.run_id,
                    e.component,
                    "skipped",
                    _text(e.reason),
                    at,
                    at,
                    0.0,
                    0,
                    0,
                    _text(e.detail),
                    None,
                    None,
                    None,
                    None,
                )
            )
        elif isinstance(e, ev.RunStarted):
            self.run_inserts.append((e.run_id, e.trigger, at, to_json(list(e.components))))
        elif isinstance(e, ev.RunFinished):
            self.run_updates.append((e.status, at, e.duration_s, to_json(e.counts), e.run_id))
        change = component_state_changes(e)
        if change is not None:
            fields = self.state.setdefault(change[0], {})
            for k, v in change[1].items():
                if isinstance(v, datetime | dict):
                    v = done.get(id(v)) or (
                        v.isoformat() if isinstance(v, datetime) else to_json(v)
                    )
                elif k in _TEXT_STATE and isinstance(v, str):
                    v = mask(v)
                fields[k] = v

    def statements(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """The statements to run, in order, each with its rows (empty ones left out)."""
        out = [
            (INSERT_RUN, self.run_inserts),
            (END_COMPONENT, self.ends),
            (FINISH_RUN, self.run_updates),
        ]
        by_shape: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for component, fields in self.state.items():
            by_shape.setdefault(tuple(fields), []).append((component, *fields.values()))
        for cols, rows in by_shape.items():
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            updates = ", ".join(f"{c}=excluded.{c}" for c in cols)
            out.append(
                (
                    f"INSERT INTO component_state (component, {names}) VALUES (?, {marks}) "
                    f"ON CONFLICT(component) DO UPDATE SET {updates}",
                    rows,
                )
            )
        return [(sql, rows) for sql, rows in out if rows]
