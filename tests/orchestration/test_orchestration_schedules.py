"""Jobs and schedules derived from the area assets: daily extraction, snapshots, the demo job."""

import datetime as dt

import dagster as dg
import pytest

from pipeline_assets import operations

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
DAILY_LATER = dg.DailyPartitionsDefinition(start_date="2024-06-01", timezone="UTC")


def fake_area(*specs: tuple[str, str, object]) -> dg.Definitions:
    assets = []
    for name, group, pdef in specs:

        @dg.asset(name=name, group_name=group, partitions_def=pdef)
        def _a() -> None:
            return None

        assets.append(_a)
    return dg.Definitions(assets=assets)


def build(areas: list[dg.Definitions], cron: str | None = None) -> dg.Definitions:
    jobs, schedules = operations.build_operations(areas, cron=cron)
    return dg.Definitions.merge(*areas, dg.Definitions(jobs=jobs, schedules=schedules))


def test_daily_job_selects_partitioned_postgres_assets_and_runs_yesterday_at_one() -> None:
    area = fake_area(("orders", "postgres", DAILY), ("items", "postgres", DAILY), ("stdf", "stdf", None))
    defs = build([area])
    job = defs.resolve_job_def("postgres_daily_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"orders", "items"}
    schedule = defs.resolve_schedule_def("postgres_daily_schedule")
    assert schedule.cron_schedule == "0 1 * * *"
    assert schedule.execution_timezone == "UTC"
    tick = dt.datetime(2024, 3, 10, 1, 0, tzinfo=dt.UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as ctx:
        result = schedule.evaluate_tick(ctx)
    assert [r.partition_key for r in result.run_requests] == ["2024-03-09"]


def test_cron_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARQUETRY_EXTRACT_CRON", "30 3 * * *")
    defs = build([fake_area(("orders", "postgres", DAILY))])
    assert defs.resolve_schedule_def("postgres_daily_schedule").cron_schedule == "30 3 * * *"


def test_a_non_daily_cron_still_requests_the_last_complete_day() -> None:
    defs = build([fake_area(("orders", "postgres", DAILY))], cron="15 */6 * * *")
    schedule = defs.resolve_schedule_def("postgres_daily_schedule")
    assert schedule.cron_schedule == "15 */6 * * *"
    tick = dt.datetime(2024, 3, 10, 18, 15, tzinfo=dt.UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as ctx:
        result = schedule.evaluate_tick(ctx)
    assert [r.partition_key for r in result.run_requests] == ["2024-03-09"]


def test_malformed_cron_is_refused_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARQUETRY_EXTRACT_CRON", "daily")
    with pytest.raises(ValueError, match="PARQUETRY_EXTRACT_CRON"):
        operations.extract_cron()


def test_different_start_dates_get_a_job_each() -> None:
    defs = build([fake_area(("orders", "postgres", DAILY), ("events", "postgres", DAILY_LATER))])
    names = {s.name for s in defs.schedules}
    assert names == {"postgres_daily_schedule_20240101", "postgres_daily_schedule_20240601"}
    later = defs.resolve_job_def("postgres_daily_job_20240601")
    assert {k.to_user_string() for k in later.asset_layer.executable_asset_keys} == {"events"}


def test_snapshot_and_demo_jobs_cover_unpartitioned_assets() -> None:
    area = fake_area(("customers", "postgres", None), ("orders", "postgres", DAILY), ("views", "stdf", None))
    defs = build([area])
    snap = defs.resolve_job_def("postgres_snapshot_job")
    assert {k.to_user_string() for k in snap.asset_layer.executable_asset_keys} == {"customers"}
    demo = defs.resolve_job_def("demo_job")
    assert {k.to_user_string() for k in demo.asset_layer.executable_asset_keys} == {"customers", "views"}


def test_no_assets_means_no_jobs() -> None:
    assert operations.build_operations([dg.Definitions()]) == ([], [])


def test_the_code_location_loads_with_the_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_assets.demo import demo_definitions

    for name in ("PARQUETRY_PG_DSN", "PARQUETRY_CATALOG_DSN"):
        monkeypatch.setenv(name, "host=127.0.0.1 port=1 dbname=unused")
    monkeypatch.setenv("PARQUETRY_DATA_ROOT", "/nonexistent")
    defs, _ = demo_definitions()
    repo = defs.get_repository_def()
    repo.load_all_definitions()
    daily = repo.get_job("postgres_daily_job")
    keys = daily.asset_layer.asset_graph.asset_check_keys
    assert {k.name for k in keys if k.asset_key.path[-1] == "orders"} == {
        "row_count_matches_source",
        "schema_unchanged",
        "readable_by_duckdb",
    }
