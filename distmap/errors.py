"""The distmap exception tree.

Every error that can end an item or a run carries an ASL error name (``error``) and a
human-readable ``cause``, exactly the two strings Step Functions records::

    DistmapError
    ├── ConfigError                         invalid job file / arguments (before any work starts)
    ├── BackendUnavailable                  the backend cannot start (no Ray, cluster unreachable)
    └── StatesError                         .error / .cause; raise it from an item function
        ├── TaskFailed                      "States.TaskFailed"
        ├── Timeout                         "States.Timeout"
        ├── Runtime                         "States.Runtime"        (terminal: States.ALL skips it)
        ├── DataLimitExceeded               "States.DataLimitExceeded" (terminal)
        ├── ItemReaderFailed                "States.ItemReaderFailed"
        ├── ResultWriterFailed              "States.ResultWriterFailed"
        ├── ExceedToleratedFailureThreshold "States.ExceedToleratedFailureThreshold"
        └── Aborted                         "States.Aborted"        (run stopped by the user)

A user function fails an item by raising any exception: its error name is the exception's
class name and its cause is the message, as Lambda reports them. To fail with an exact name,
raise ``StatesError("MyService.Throttled", "try later")``.
"""

from __future__ import annotations


class DistmapError(Exception):
    """Base class of every error distmap raises on purpose."""


class ConfigError(DistmapError):
    """The job configuration is invalid. Raised before any item is read.

    ``field`` is a dotted path to the offending field (``ItemReader.ReaderConfig.InputType``),
    ``reason`` says what is wrong with it.
    """

    def __init__(self, field: str, reason: str, *, source: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.source = source
        self.problems: list[ConfigError] = []
        """Every problem found, when there are several (``field`` / ``reason`` are the first's)."""
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {reason}" if field else f"{where}{reason}")

    @classmethod
    def several(cls, errors: list[ConfigError]) -> ConfigError:
        """One error reporting all of ``errors`` (one per line), or the only one."""
        flat = [p for e in errors for p in (e.problems or [e])]
        if len(flat) == 1:
            return flat[0]
        first = flat[0]
        err = cls(first.field, first.reason, source=first.source)
        err.problems = flat
        where = f"{first.source}: " if first.source else ""
        lines = "\n".join(f"  {e.field}: {e.reason}" if e.field else f"  {e.reason}" for e in flat)
        err.args = (f"{where}{len(flat)} problems:\n{lines}",)
        return err


class BackendUnavailable(DistmapError):
    """The chosen backend cannot be used: Ray is not installed, or the cluster cannot be reached.
    Raised before any item is read."""


class StatesError(DistmapError):
    """An error with an ASL name and cause.

    Item functions raise it to fail with an exact error name; the engine raises the
    subclasses below for the ``States.*`` errors it produces itself.
    """

    error_name: str = "States.TaskFailed"

    def __init__(self, error: str | None = None, cause: str = "") -> None:
        self.error = error or self.error_name
        self.cause = cause
        super().__init__(f"{self.error}: {cause}" if cause else self.error)

    def __reduce__(self):  # keep error/cause when pickled across processes
        return (_rebuild_states_error, (type(self), self.error, self.cause))


def _rebuild_states_error(cls: type[StatesError], error: str, cause: str) -> StatesError:
    obj = cls.__new__(cls)
    StatesError.__init__(obj, error, cause)
    return obj


class TaskFailed(StatesError):
    """A task failed for a reason that has no more specific name."""

    error_name = "States.TaskFailed"


class Timeout(StatesError):
    """An execution was stopped at a time limit (TimeoutSeconds, an ExecutionType's limit): its
    status is TIMED_OUT, it counts in ``timedOut``. A plain ``StatesError("States.Timeout")``
    raised by user code (a Task that timed out inside a child) is an ordinary failure: FAILED."""

    error_name = "States.Timeout"


class Runtime(StatesError):
    """A terminal runtime error (for example an output that is not JSON). Not matched by States.ALL."""

    error_name = "States.Runtime"


class DataLimitExceeded(StatesError):
    """An input or output exceeded a size limit. Terminal: not matched by States.ALL."""

    error_name = "States.DataLimitExceeded"


class ItemReaderFailed(StatesError):
    """The item source could not be read or holds malformed data. Fails the whole run."""

    error_name = "States.ItemReaderFailed"


class ResultWriterFailed(StatesError):
    """Result files or the manifest could not be written. Fails the whole run."""

    error_name = "States.ResultWriterFailed"


class ExceedToleratedFailureThreshold(StatesError):
    """More items failed than ToleratedFailureCount / ToleratedFailurePercentage allow."""

    error_name = "States.ExceedToleratedFailureThreshold"


class Aborted(StatesError):
    """The run was stopped before it finished (Ctrl-C / SIGTERM)."""

    error_name = "States.Aborted"


#: Error names that ``States.ALL`` does not match (AWS: terminal errors).
TERMINAL_ERRORS = frozenset({"States.Runtime", "States.DataLimitExceeded"})


def error_matches(error: str, error_equals: tuple[str, ...] | list[str]) -> bool:
    """Whether an ASL ``ErrorEquals`` list matches ``error``.

    ``States.ALL`` matches every error except the terminal ones; ``States.TaskFailed``
    matches every error except the timeouts and the terminal ones; ``States.Timeout`` also matches
    ``States.HeartbeatTimeout`` (a task that stopped sending heartbeats timed out) - AWS's
    error-handling rules.
    """
    for name in error_equals:
        if name == error:
            return True
        if name == "States.ALL" and error not in TERMINAL_ERRORS:
            return True
        if name == "States.TaskFailed" and error not in TERMINAL_ERRORS and error not in _TIMEOUTS:
            return True
        if name == "States.Timeout" and error == "States.HeartbeatTimeout":
            return True
    return False


_TIMEOUTS = ("States.Timeout", "States.HeartbeatTimeout")


def classify(exc: BaseException) -> tuple[str, str]:
    """``(Error, Cause)`` for an exception raised by user code, as Lambda reports one: a
    ``StatesError`` keeps its name and cause; any other exception gives its class name and its
    message (an empty ``TimeoutError``, as asyncio raises, says "timed out"). The one
    classification used by ``distmap run`` items, ``distmap execute`` tasks and activities."""
    if isinstance(exc, StatesError):
        return exc.error, exc.cause
    try:
        message = str(exc)
    except Exception as inner:  # a broken __str__ must not take the lane (or the run) down with it
        message = f"(the exception's message could not be read: {type(inner).__name__}: {inner!r})"
    if isinstance(exc, TimeoutError) and not message:  # asyncio.TimeoutError is TimeoutError
        return type(exc).__name__, "timed out"
    return type(exc).__name__, message


def as_states_error(exc: BaseException) -> StatesError:
    """``exc`` as a StatesError with :func:`classify`'s name and cause."""
    if isinstance(exc, StatesError):
        return exc
    return StatesError(*classify(exc))


class QueryEvaluationError(StatesError):
    """A JSONata expression threw, returned nothing (undefined) or a value of the wrong type."""

    error_name = "States.QueryEvaluationError"
