"""The landing sensor and the ingestion asset, on an ephemeral Dagster instance."""

import io

import dagster as dg
import fsspec
import pytest

from parquetry.stdf.ingest import list_failures
from parquetry.storage import Storage
from parquetry.testing.stdf_writer import write_lot
from pipeline_assets.stdf_files import ingest_landing_once, no_failed_stdf_files, stdf_failures, stdf_tables
from resources.storage import StorageResource
from sensors.landing import SOURCE_TAG, STDF_PARTITIONS_NAME, build_landing_sensor

BASE = "/stdf_sensor_landing"


@pytest.fixture
def landing(tmp_path):
    fs = fsspec.filesystem("memory")
    if fs.exists(BASE):
        fs.rm(BASE, recursive=True)
    fs.mkdir(BASE)

    def drop(name: str, **lot) -> bytes:
        path = tmp_path / name
        write_lot(path, **{"parts": 8, "tests": 4, "sites": 4, **lot})
        data = path.read_bytes()
        fs.pipe(f"{BASE}/{name}", data)
        return data

    yield fs, drop
    fs.rm(BASE, recursive=True)


def _tick(sensor, instance, cursor):
    """Evaluate one tick and apply its partition requests as the sensor daemon does."""
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_one_run_per_new_content_none_for_a_reupload_none_on_the_next_tick(landing):
    fs, drop = landing
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_landing_sensor(landing_uri=f"memory://{BASE}")
    drop("a.stdf", seed=1)
    drop("b.stdf", seed=2)
    first = _tick(sensor, instance, None)
    assert len(first.run_requests) == 2
    keys = {r.partition_key for r in first.run_requests}
    assert {r.run_key for r in first.run_requests} == keys
    assert set(instance.get_dynamic_partitions(STDF_PARTITIONS_NAME)) == keys
    assert {r.tags[SOURCE_TAG] for r in first.run_requests} == {
        f"memory://{BASE}/a.stdf",
        f"memory://{BASE}/b.stdf",
    }

    again = _tick(sensor, instance, first.cursor)
    assert again.run_requests == []

    fs.pipe(f"{BASE}/copy_of_a.stdf", fs.cat(f"{BASE}/a.stdf"))  # same bytes, new name
    drop("c.stdf", seed=3)
    third = _tick(sensor, instance, again.cursor)
    assert [r.tags[SOURCE_TAG] for r in third.run_requests] == [f"memory://{BASE}/c.stdf"]


def test_two_copies_in_one_tick_make_one_request(landing):
    fs, drop = landing
    drop("x.stdf", seed=5)
    fs.pipe(f"{BASE}/y.stdf", fs.cat(f"{BASE}/x.stdf"))
    result = _tick(build_landing_sensor(landing_uri=f"memory://{BASE}"), dg.DagsterInstance.ephemeral(), None)
    assert len(result.run_requests) == 1


def test_sensor_skips_without_a_landing_folder(monkeypatch):
    monkeypatch.delenv("PARQUETRY_LANDING_URI", raising=False)
    result = build_landing_sensor()(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    assert isinstance(result, dg.SkipReason)


def _resources(root):
    return {"storage": StorageResource(root=str(root)), "catalog": dg.ResourceDefinition.none_resource()}


def test_the_asset_materializes_one_partition_with_table_metadata(landing, tmp_path):
    _fs, drop = landing
    data = drop("one.stdf", seed=9, lot_id="LOT-9")
    import hashlib

    key = hashlib.sha256(data).hexdigest()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(STDF_PARTITIONS_NAME, [key])
    result = dg.materialize(
        [stdf_tables],
        instance=instance,
        partition_key=key,
        tags={SOURCE_TAG: f"memory://{BASE}/one.stdf"},
        resources=_resources(tmp_path / "root"),
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("stdf_tables")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["rows_parts"] == 8 and meta["rows_results"] == 32 and meta["lot"] == "LOT-9"
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "record_counts_match" and evaluation.passed
    assert evaluation.metadata["PTR records -> results rows"].value == "32 of 32"
    assert meta["parquet_bytes"] > 0 and meta["mb_per_s"] >= 0 and meta["engine"]
    assert (
        tmp_path
        / "root"
        / "stdf"
        / "parts"
        / "product=PRODUCT-A"
        / "stage=FT1"
        / "lot=LOT-9"
        / f"{key}.parquet"
    ).is_file()


@pytest.mark.slow
def test_landing_once_ingests_good_files_and_reports_the_bad_one(landing, tmp_path):
    fs, drop = landing
    drop("good1.stdf", seed=1)
    drop("good2.stdf", seed=2)
    broken = io.BytesIO(fs.cat(f"{BASE}/good1.stdf")[:-7] + b"")  # cut inside the last record
    fs.pipe(f"{BASE}/broken.stdf", broken.getvalue())
    instance = dg.DagsterInstance.ephemeral()
    resources = _resources(tmp_path / "root")
    runs, cursor = ingest_landing_once(instance, resources, landing_uri=f"memory://{BASE}")
    assert sorted(r.success for r in runs) == [False, True, True]
    failures = list_failures(Storage(str(tmp_path / "root")))
    assert [f["source"] for f in failures] == [f"memory://{BASE}/broken.stdf"]
    assert failures[0]["offset"] is not None

    report = dg.materialize([stdf_failures], resources=resources, instance=instance)
    (mat,) = report.asset_materializations_for_node("stdf_failures")
    assert mat.metadata["failed_files"].value == 1
    assert "broken.stdf" in mat.metadata["failures"].value
    check = dg.materialize([stdf_failures, no_failed_stdf_files], resources=resources, instance=instance)
    (evaluation,) = check.get_asset_check_evaluations()
    assert not evaluation.passed

    rerun, _ = ingest_landing_once(instance, resources, landing_uri=f"memory://{BASE}", cursor=cursor)
    assert rerun == []
