"""Retries for transient trouble only: a lost connection is worth another try, bad data is not.

Dagster's ``RetryPolicy`` retries any failure of a step. Retrying a malformed COPY stream, an
unsupported column type or a corrupt STDF file only wastes time and hides the report, so data errors
are turned into ``dg.Failure(allow_retries=False)``, which Dagster does not retry. Everything else
(``psycopg.OperationalError``, ``OSError``, ``TimeoutError``, storage timeouts...) propagates unchanged
and the step's ``RetryPolicy`` applies, with exponential backoff and jitter so that many partitions
failing at once do not come back in lockstep.

Use it as a decorator under ``@dg.asset`` or as a context manager around the risky part::

    @dg.asset(retry_policy=TRANSIENT_RETRY_POLICY)
    @no_retry_on_bad_data
    def orders(context): ...

The engine's error classes are matched by name (and module prefix ``parquetry.``) rather than imported,
so importing this module stays cheap and works while an area is absent.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dagster as dg

__all__ = [
    "DATA_ERROR_NAMES",
    "TRANSIENT_RETRY_POLICY",
    "bad_data_fails_without_retry",
    "is_data_error",
    "no_retry_on_bad_data",
    "transient_retry_policy",
]

# Engine exceptions that mean "this input is wrong": retrying cannot help.
DATA_ERROR_NAMES = frozenset(
    {
        "CopyFormatError",
        "UnsupportedTypeError",
        "StdfFormatError",
        "TableSpecError",
        "SchemaMismatchError",
        "SchemaMergeError",
        "VerificationError",
        "DatasetLocationMismatch",
    }
)

# psycopg errors raised by the server about the statement or the data, not about the connection.
_PSYCOPG_DATA_ERRORS = ("DataError", "IntegrityError", "ProgrammingError", "NotSupportedError")

# SQLSTATE classes about the statement or the data: 22 data exception, 23 integrity constraint,
# 42 syntax error or access rule violation, 0A feature not supported. Connection (08), resources (53),
# operator intervention (57, e.g. a restart) and serialization (40) stay retryable.
_DATA_SQLSTATE_CLASSES = frozenset({"22", "23", "42", "0A"})

F = TypeVar("F", bound=Callable[..., Any])


def transient_retry_policy(max_retries: int | None = None, delay_s: float | None = None) -> dg.RetryPolicy:
    """Exponential backoff with +/- jitter: ``delay_s``, ~2x, ~4x... up to ``max_retries`` tries.

    Defaults come from ``PARQUETRY_MAX_RETRIES`` (3) and ``PARQUETRY_RETRY_DELAY_S`` (5 seconds).
    """
    if max_retries is None:
        max_retries = int(os.environ.get("PARQUETRY_MAX_RETRIES", "3"))
    if delay_s is None:
        delay_s = float(os.environ.get("PARQUETRY_RETRY_DELAY_S", "5"))
    return dg.RetryPolicy(
        max_retries=max_retries, delay=delay_s, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


TRANSIENT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc``, or an error it wraps (``raise ... from``), says the input is bad.

    Engine layers wrap low-level errors to name the table or file (``ExtractError(...) from
    psycopg_error``), so the cause chain is followed: a wrapped data error stays a data error.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_data_error_itself(current):
            return True
        current = current.__cause__
    return False


def _is_data_error_itself(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        if cls.__name__ in DATA_ERROR_NAMES and cls.__module__.startswith("parquetry"):
            return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return sqlstate[:2] in _DATA_SQLSTATE_CLASSES
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        classes = tuple(getattr(psycopg, name) for name in _PSYCOPG_DATA_ERRORS if hasattr(psycopg, name))
        if classes and isinstance(exc, classes):
            return True
    return False


def _final_failure(exc: BaseException) -> dg.Failure:
    return dg.Failure(
        description=f"bad data, not retried: {type(exc).__name__}: {exc}",
        metadata={"error_class": f"{type(exc).__module__}.{type(exc).__qualname__}"},
        allow_retries=False,
    )


@contextlib.contextmanager
def bad_data_fails_without_retry() -> Iterator[None]:
    """Turn data errors raised inside the block into ``dg.Failure(allow_retries=False)``."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        if is_data_error(exc):
            raise _final_failure(exc) from exc
        raise


def no_retry_on_bad_data(fn: F) -> F:
    """Decorator form of :func:`bad_data_fails_without_retry` for asset, op and check functions.

    The signature is kept (``functools.wraps``), so Dagster still sees the context and resources.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with bad_data_fails_without_retry():
                return (yield from fn(*args, **kwargs))

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with bad_data_fails_without_retry():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
