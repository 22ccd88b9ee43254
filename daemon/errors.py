"""Every exception type interlock raises, one per failure mode.

Messages name the offending thing with ``!r`` and say what to do about it. The
scheduler classifies failures by type: a :class:`TransientError` is retried with
backoff, anything else fails the component at once.
"""

from __future__ import annotations

from datetime import datetime

from interlock.secrets import mask


class InterlockError(Exception):
    """Base of every error interlock raises on purpose.

    Its message is masked as it is made: text from outside (an error page that quotes
    the request) may echo a secret, and an error is stored, served and sent.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask(a) if isinstance(a, str) else a for a in args))


# --- configuration -----------------------------------------------------------------


class ConfigError(InterlockError):
    """The configuration cannot be used; ``problems`` lists every reason found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = [mask(p) for p in problems]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"configuration {source!r} is invalid:\n{lines}")


class SecretMissingError(InterlockError):
    """A ``${ENV}`` or ``${credential:NAME}`` placeholder has no value."""


class ComponentLoadError(InterlockError):
    """A component's ``class`` cannot be imported or is not a component."""


# --- running components ------------------------------------------------------------


class TransientError(InterlockError):
    """A failure worth retrying: network errors, HTTP 5xx, HTTP 429.

    ``retry_after`` is the delay in seconds the source asked for, if it did.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FetchError(InterlockError):
    """A source answered in a way that retrying will not fix (4xx, wrong content)."""


class PayloadTooLargeError(FetchError):
    """A download exceeded its configured size limit and was abandoned."""


class PrivateAddressError(FetchError):
    """A URL from a remote catalogue is not http(s) or reaches a non-public address."""


class ValidationFailedError(InterlockError):
    """A payload failed spec checks or data-quality rules; never retried.

    ``report`` is the quality report (JSON-serialisable) that explains it.
    """

    def __init__(self, message: str, *, report: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.report = report or {}


class UnsafeArchiveError(ValidationFailedError):
    """A zip is not a zip, is truncated, is a zip bomb, or has unsafe member names."""


class WorkCancelledError(InterlockError):
    """A worker thread saw its cancellation signal and stopped part-way."""


class PublishError(InterlockError):
    """A dataset could not be swapped in; the previous dataset is untouched."""


class QuotaExhaustedError(InterlockError):
    """The daily API quota is spent; a non-priority call waits for the reset.

    ``reset_at`` is when the quota day ends (UTC).
    """

    def __init__(self, message: str, *, reset_at: datetime) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class FeedRejectedError(InterlockError):
    """A GTFS-realtime payload was refused: empty, HTML, not protobuf, stale or future."""


class PtvApiError(FetchError):
    """The PTV Timetable API refused a request (400 or 403) with its own message.

    A wrong signature, a disabled devid or a bad parameter: retrying cannot help.
    ``status`` is the HTTP status.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotificationError(InterlockError):
    """A notification channel (SMTP relay, Slack webhook) refused or could not be reached."""


# --- lifecycle ---------------------------------------------------------------------


class StateError(InterlockError):
    """An object was used in a lifecycle state that does not allow the operation."""


class StateDirError(InterlockError):
    """The configured state or data directory cannot be created or written to."""


class StoreError(InterlockError):
    """The state database cannot be opened or written."""


class StoreUnavailableError(StoreError):
    """The state store's server is unreachable or busy for now (refused, lost, restarting).

    The lossless history subscriber waits for it and tries again, however long it lasts,
    as it does for a locked SQLite file.
    """


class SchemaVersionError(InterlockError):
    """A database's schema version is newer than the code's, or a migration step failed."""


class QueryError(InterlockError):
    """A read-only query (``interlock query``) is not valid SQL, writes, or cannot run."""


class ExportError(InterlockError):
    """A dataset cannot be exported (``interlock export``): missing, unreadable, or a value
    that does not fit its declared column type; the previous export is untouched."""


class ReplayError(InterlockError):
    """A component cannot be rebuilt from the raw archive: no archived payload, or it
    cannot replay (``interlock replay``)."""


class DashboardError(InterlockError):
    """The operator dashboard cannot listen on its loopback address, or its token file is unsafe."""


# --- admin interface ---------------------------------------------------------------


class AdminError(InterlockError):
    """The admin socket cannot be bound, or a daemon answered in a way we cannot use."""


class DaemonNotListeningError(AdminError):
    """No daemon answers on the admin socket (not running, stale socket, or no access)."""


class AdminRequestError(AdminError):
    """An admin request was refused; ``code`` is the stable machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
