"""Structured JSON logs (structlog) carrying the request id of the work being done.

Logs never record what a client sent: exceptions are rendered without the messages that
carry input (see `format_exception`), and access logs without query strings.
"""

from __future__ import annotations

import logging
import sys
import traceback
from contextvars import ContextVar
from types import TracebackType

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import StatementError

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    request_id = request_id_var.get()
    if request_id and "request_id" not in event:
        event["request_id"] = request_id
    return event


def _safe_message(exc: BaseException) -> str:
    """`exc`'s message, unless it carries the values of a statement or a model: a database
    error names the statement's parameters and echoes bad values (`[parameters: ('a@b.c',
    ...)]`, `invalid input for query argument $1: 'a@b.c'`, `Key (email)=(a@b.c) already
    exists`), so only its statement, SQLSTATE and constraint are kept."""
    if isinstance(exc, StatementError):
        return f"[SQL: {exc.statement}] ({type(exc.orig).__name__})"
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False, include_context=False)
        )
    module = type(exc).__module__
    if module.startswith(("asyncpg", "sqlalchemy", "psycopg")):
        details = [
            f"{name}={value}"
            for name in ("sqlstate", "constraint_name", "table_name", "column_name")
            if isinstance(value := getattr(exc, name, None), str)
        ]
        return " ".join(details) or "(message withheld: it may quote input)"
    return str(exc)


def format_exception(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
) -> str:
    """A traceback like Python's, chained causes included, with `_safe_message` for text."""
    chain: list[tuple[BaseException, str]] = []
    exc: BaseException | None = exc_info[1]
    link = ""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append((exc, link))
        if exc.__cause__ is not None:
            exc, link = (
                exc.__cause__,
                "The above exception was the direct cause of the following exception:",
            )
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc, link = (
                exc.__context__,
                "During handling of the above exception, another exception occurred:",
            )
        else:
            exc = None
    parts: list[str] = []
    for exc, link in reversed(chain):
        if exc.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(exc.__traceback__))
        name = type(exc).__qualname__
        module = type(exc).__module__
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        message = _safe_message(exc)
        parts.append(f"{name}: {message}\n" if message else f"{name}\n")
        if link:
            parts.append(f"\n{link}\n\n")
    # `chain` runs from the raised exception to its first cause; links sit before each.
    return "".join(parts).rstrip("\n")


class _NoQueryString(logging.Filter):
    """Access log lines without the query string: GET operations carry their variables
    (tokens, emails) there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    """Route structlog and stdlib logging (uvicorn, arq, sqlalchemy) through one renderer."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.ExceptionRenderer(format_exception),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoQueryString) for f in access.filters):
        access.addFilter(_NoQueryString())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
