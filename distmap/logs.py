"""Logging: structlog events, on stderr for the CLI and through the caller's logging for the library.

distmap's modules log through ``get_logger()``. When structlog is configured (by the CLI's
``configure_logging``, or by an application that uses structlog), events go through that
configuration. Otherwise, as a library should, distmap hands its events to the standard
``logging`` logger ``"distmap"`` (one logfmt line per event, credentials masked): the caller's
logging configuration decides where they go, and without any, Python's last-resort handler
prints warnings and errors on stderr. distmap never prints log lines on stdout.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from distmap.storage import redact


def redact_secrets(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Processor: mask credentials in every string value of an event."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def _stdlib_logger() -> Any:
    return structlog.wrap_logger(
        logging.getLogger("distmap"),
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            redact_secrets,
            structlog.processors.LogfmtRenderer(key_order=["event"], drop_missing=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


class _Logger:
    """distmap's logger: resolves to structlog's configuration when there is one, else to the
    standard ``logging`` logger ``"distmap"``. Resolved on every call, so a module-level logger
    follows configuration done after import."""

    def bind(self, **context: Any) -> Any:
        return self._resolve().bind(**context)

    @staticmethod
    def _resolve() -> Any:
        if structlog.is_configured():
            return structlog.get_logger("distmap")
        return _stdlib_logger()

    def __getattr__(self, name: str) -> Any:  # debug, info, warning, error, exception, ...
        return getattr(self._resolve(), name)


def get_logger() -> Any:
    """The logger distmap's modules use (see the module docstring)."""
    return _Logger()


def configure_logging(*, json: bool, level: str = "info", stream: Any = None) -> None:
    """JSON lines (one event per line) or a console rendering, on stderr."""
    stream = stream or sys.stderr
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
