"""Retries: transient errors are retried with backoff; bad data fails once, with no retry."""

from __future__ import annotations

import dagster as dg
import pytest

from parquetry.catalog.catalog import DatasetLocationMismatch
from parquetry.pgcopy.errors import CopyFormatError, UnsupportedTypeError
from pipeline_assets.policies import (
    is_data_error,
    no_retry_on_bad_data,
    transient_retry_policy,
)


def attempts_until_done(error: BaseException, fail_times: int = 99) -> tuple[bool, int]:
    """Materialize an asset that raises ``error`` the first ``fail_times`` calls; return (success, calls)."""
    calls = {"n": 0}

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
    @no_retry_on_bad_data
    def flaky(context) -> int:
        calls["n"] += 1
        if calls["n"] <= fail_times:
            raise error
        return 1

    result = dg.materialize([flaky], raise_on_error=False)
    return result.success, calls["n"]


@pytest.mark.parametrize(
    "error",
    [
        CopyFormatError("truncated tuple", source="orders/chunk-0003.bin", offset=4096),
        UnsupportedTypeError("no Arrow type", table="public.t", column="c", type_name="tsvector"),
        DatasetLocationMismatch("dataset 'orders' lives at s3://a/orders, not /data/orders: refusing to mix"),
    ],
    ids=["copy-format", "unsupported-type", "dataset-location"],
)
def test_bad_data_fails_at_once_without_retry(error: BaseException) -> None:
    assert attempts_until_done(error) == (False, 1)


@pytest.mark.parametrize(
    "error",
    [OSError("storage timed out"), TimeoutError("read timeout"), ConnectionResetError("peer reset")],
    ids=["oserror", "timeout", "connection-reset"],
)
def test_transient_errors_are_retried_up_to_the_limit(error: BaseException) -> None:
    assert attempts_until_done(error) == (False, 3)


def test_a_transient_error_that_clears_succeeds_on_retry() -> None:
    assert attempts_until_done(OSError("blip"), fail_times=1) == (True, 2)


def test_psycopg_connection_loss_is_transient_but_its_data_errors_are_not() -> None:
    import psycopg

    assert not is_data_error(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_data_error(psycopg.DataError("invalid input syntax for type integer"))
    assert is_data_error(psycopg.errors.UndefinedTable("relation does not exist"))


def test_failure_names_the_original_error() -> None:
    @no_retry_on_bad_data
    def parse() -> None:
        raise CopyFormatError("bad field length", source="x.bin", offset=17, row=2, column="id")

    with pytest.raises(dg.Failure) as info:
        parse()
    assert info.value.allow_retries is False
    assert "CopyFormatError" in info.value.description
    assert "byte offset 17" in info.value.description
    assert isinstance(info.value.__cause__, CopyFormatError)


def test_generator_assets_keep_their_outputs() -> None:
    @no_retry_on_bad_data
    def gen() -> object:
        yield 1
        yield 2

    assert list(gen()) == [1, 2]


def test_same_named_error_outside_parquetry_is_not_a_data_error() -> None:
    class CopyFormatError(Exception):  # a user's class of the same name
        pass

    assert not is_data_error(CopyFormatError("x"))


def test_retry_policy_uses_exponential_backoff_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARQUETRY_MAX_RETRIES", "5")
    monkeypatch.setenv("PARQUETRY_RETRY_DELAY_S", "0.5")
    policy = transient_retry_policy()
    assert (policy.max_retries, policy.delay) == (5, 0.5)
    assert policy.backoff == dg.Backoff.EXPONENTIAL
    assert policy.jitter == dg.Jitter.PLUS_MINUS


def test_server_errors_are_classified_by_sqlstate() -> None:
    from parquetry.extract.errors import ServerError

    assert is_data_error(ServerError("invalid input syntax", sqlstate="22P02"))
    assert is_data_error(ServerError("relation does not exist", sqlstate="42P01"))
    assert not is_data_error(ServerError("terminating connection due to administrator", sqlstate="57P01"))
    assert not is_data_error(ServerError("connection failure", sqlstate="08006"))


def test_stdf_format_error_is_bad_data() -> None:
    from parquetry.stdf.errors import StdfFormatError

    assert is_data_error(StdfFormatError(offset=12, path="lot1.stdf", records_read=3, reason="short record"))


def test_wrapped_errors_are_classified_by_their_cause() -> None:
    import psycopg

    from parquetry.extract.errors import ExtractError

    def wrapped(cause: BaseException) -> ExtractError:
        try:
            raise ExtractError("public.orders: failed") from cause
        except ExtractError as exc:
            return exc

    assert is_data_error(wrapped(psycopg.errors.UndefinedColumn("column x does not exist")))
    assert not is_data_error(wrapped(psycopg.OperationalError("connection lost")))
    assert not is_data_error(wrapped(OSError("disk full")))
