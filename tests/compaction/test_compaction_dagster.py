"""The sensor, the nightly sweep and the asset, against a real catalog and real Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parquetry.storage import Storage
from parquetry.testing.compaction import register, write_files
from pipeline_assets.compaction import compacted_dataset, compaction_sweep, defs
from resources.catalog import CatalogResource
from sensors.compaction import DATASETS, compaction_sensor

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def resource(pg_dsn: str) -> CatalogResource:
    res = CatalogResource(dsn=pg_dsn, small_file_bytes=1 << 20, min_small_files=4)
    res.get_catalog().migrate()
    return res


def flag(resource: CatalogResource, tmp_path: Path, name: str, files: int = 4, start: int = 0) -> Storage:
    storage = Storage(str(tmp_path / name))
    register(
        resource.get_catalog(),
        name,
        storage,
        write_files(storage, "", files=files, rows_per_file=100, start=start),
    )
    return storage


def test_code_location_defs_load_once_the_catalog_resource_is_bound() -> None:
    bound = dg.Definitions.merge(defs, dg.Definitions(resources={"catalog": CatalogResource(dsn="dbname=x")}))
    repo = bound.get_repository_def()
    assert repo.get_job("compaction_job").partitions_def == DATASETS
    sweep = repo.get_schedule_def("compaction_sweep")
    assert (sweep.cron_schedule, sweep.execution_timezone) == ("0 2 * * *", "UTC")
    assert compacted_dataset.op.pool == "compaction"


def test_sensor_requests_one_run_per_flagged_dataset_and_none_again_for_the_same_generation(
    resource: CatalogResource, tmp_path: Path
) -> None:
    flag(resource, tmp_path, "alpha")
    flag(resource, tmp_path, "beta")
    flag(resource, tmp_path, "healthy", files=1)
    instance = dg.DagsterInstance.ephemeral()

    first = compaction_sensor(dg.build_sensor_context(instance=instance, resources={"catalog": resource}))

    assert sorted((r.run_key, r.partition_key) for r in first.run_requests) == [
        ("alpha:1", "alpha"),
        ("beta:1", "beta"),
    ]
    (add,) = first.dynamic_partitions_requests
    assert (add.partitions_def_name, sorted(add.partition_keys)) == ("datasets", ["alpha", "beta"])
    instance.add_dynamic_partitions("datasets", list(add.partition_keys))

    second = compaction_sensor(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"catalog": resource})
    )
    assert second.run_requests == [] and second.dynamic_partitions_requests == []

    flag(resource, tmp_path, "alpha", files=1, start=1000)  # a new generation of alpha
    third = compaction_sensor(
        dg.build_sensor_context(instance=instance, cursor=second.cursor, resources={"catalog": resource})
    )
    assert [r.run_key for r in third.run_requests] == ["alpha:2"]
    assert json.loads(third.cursor) == {"alpha": 2, "beta": 1}


def test_datasets_already_requested_do_not_starve_those_flagged_after_them(
    resource: CatalogResource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sensors.compaction.MAX_DATASETS_PER_TICK", 2)
    for name in ("alpha", "beta", "gamma"):
        flag(resource, tmp_path, name)
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> dg.SensorResult:
        return compaction_sensor(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources={"catalog": resource})
        )

    first = tick(None)
    assert [r.run_key for r in first.run_requests] == ["alpha:1", "beta:1"]
    # alpha's and beta's runs failed: both stay flagged at generation 1 and would fill every tick
    second = tick(first.cursor)
    assert [r.run_key for r in second.run_requests] == ["gamma:1"]
    assert json.loads(second.cursor) == {"alpha": 1, "beta": 1, "gamma": 1}

    catalog = resource.get_catalog()
    with catalog._connect() as conn:  # alpha and beta compacted elsewhere: no longer flagged
        conn.execute(catalog._q("UPDATE {s}.datasets SET compaction_needed = false WHERE name <> 'gamma'"))
    third = tick(second.cursor)
    assert third.run_requests == []
    assert json.loads(third.cursor) == {"gamma": 1}  # the cursor forgets what no longer needs it


def test_sensor_skips_before_the_catalog_exists(pg_dsn: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = compaction_sensor(
        dg.build_sensor_context(instance=instance, resources={"catalog": CatalogResource(dsn=pg_dsn)})
    )
    assert result.run_requests == [] and "not been created" in result.skip_reason.skip_message


def test_nightly_sweep_requests_every_flagged_dataset(resource: CatalogResource, tmp_path: Path) -> None:
    flag(resource, tmp_path, "alpha")
    flag(resource, tmp_path, "beta")
    with dg.instance_for_test() as instance:
        requests = compaction_sweep(
            dg.build_schedule_context(instance=instance, resources={"catalog": resource})
        )
        assert sorted(r.partition_key for r in requests) == ["alpha", "beta"]
        assert sorted(instance.get_dynamic_partitions("datasets")) == ["alpha", "beta"]


def test_asset_compacts_a_real_dataset_and_records_before_and_after(
    resource: CatalogResource, tmp_path: Path
) -> None:
    storage = flag(resource, tmp_path, "orders", files=6)
    expected = pa.concat_tables([pq.read_table(f.path) for f in resource.get_catalog().live_files("orders")])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("datasets", ["orders"])
        result = dg.materialize(
            [compacted_dataset],
            partition_key="orders",
            instance=instance,
            resources={"catalog": resource},
            run_config={
                "ops": {
                    "compacted_dataset": {
                        "config": {"row_group_rows": 250, "target_file_rows": 10_000, "encode_threads": 3}
                    }
                }
            },
        )

    assert result.success
    (mat,) = result.asset_materializations_for_node("compacted_dataset")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert (meta["files_before"], meta["files_after"]) == (6, 1)
    assert (meta["row_groups_before"], meta["row_groups_after"]) == (6, 3)
    assert meta["verified"] is True and meta["ratio"] == 6.0
    (live,) = resource.get_catalog().live_files("orders")
    assert pq.read_table(live.path).equals(expected)
    assert live.path.startswith(storage.base)
