"""Structured logging: JSON or console lines, request-scoped fields, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Field names whose values never reach a log line, whatever logs them.
SECRET_FIELDS = frozenset(
    {"password", "token", "secret", "authorization", "refresh_token", "access_token"}
)


def _redact(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in event:
        if key.lower() in SECRET_FIELDS:
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Send structured log lines to stderr at `level`, as JSON or for a console."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A logger whose lines carry `logger_name=name` and the current request's fields."""
    return structlog.get_logger(logger_name=name)


def bind_request_fields(**fields: Any) -> None:
    """Add fields (request id, repository, user, ...) to every line of the current request."""
    structlog.contextvars.bind_contextvars(**fields)


def clear_request_fields() -> None:
    """Forget the fields of the request that just ended."""
    structlog.contextvars.clear_contextvars()
