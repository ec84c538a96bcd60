"""Ingested STDF tables are registered in the catalog as datasets stdf_<table>."""

import dagster as dg
import pytest

from parquetry.catalog import Catalog
from parquetry.stdf.ingest import catalog_registrar, ingest_stdf_file
from parquetry.storage import Storage
from parquetry.testing.stdf_writer import write_lot
from pipeline_assets.stdf_files import stdf_tables
from resources.catalog import CatalogResource
from resources.storage import StorageResource
from sensors.landing import SOURCE_TAG, STDF_PARTITIONS_NAME


@pytest.mark.postgres
@pytest.mark.slow
def test_each_table_becomes_a_dataset_and_reingest_does_not_duplicate(pg_dsn, tmp_path):
    catalog = Catalog(pg_dsn)
    catalog.migrate()
    storage = Storage(str(tmp_path / "root"))
    lot = write_lot(tmp_path / "lot.stdf", parts=8, tests=3, sites=4, wafers=1)
    first = ingest_stdf_file(lot.path, storage, "cat1", register=catalog_registrar(catalog, storage))
    assert first.ok
    expected = {f"stdf_{t}" for t in first.files}
    assert expected <= set(catalog.datasets())
    live = catalog.live_files("stdf_parts")
    assert [(f.path, f.rows) for f in live] == [(first.files["parts"].path, 8)]
    ingest_stdf_file(lot.path, storage, "cat1", register=catalog_registrar(catalog, storage))
    assert len(catalog.live_files("stdf_parts")) == 1


@pytest.mark.postgres
@pytest.mark.slow
def test_the_asset_registers_when_a_catalog_is_bound(pg_dsn, tmp_path):
    lot = write_lot(tmp_path / "lot.stdf", parts=4, tests=2, sites=2)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(STDF_PARTITIONS_NAME, ["cat2"])
    result = dg.materialize(
        [stdf_tables],
        instance=instance,
        partition_key="cat2",
        tags={SOURCE_TAG: str(lot.path)},
        resources={
            "storage": StorageResource(root=str(tmp_path / "root")),
            "catalog": CatalogResource(dsn=pg_dsn),
        },
    )
    assert result.success
    assert "stdf_results" in Catalog(pg_dsn, schema="parquetry_catalog").datasets()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_file_whose_rows_were_compacted_is_not_ingested_twice(pg_dsn, tmp_path):
    import hashlib

    from parquetry.compact.compactor import CompactionSettings, Compactor
    from parquetry.stdf.ingest import merged_by_compaction

    catalog = Catalog(pg_dsn)
    catalog.migrate()
    root = tmp_path / "root"
    storage = Storage(str(root))
    lots = [
        write_lot(tmp_path / f"wafer{n}.stdf", parts=4, tests=2, sites=2, seed=n, lot_id="L7") for n in (1, 2)
    ]
    ids = [hashlib.sha256(lot.path.read_bytes()).hexdigest() for lot in lots]
    for lot, file_id in zip(lots, ids, strict=True):
        assert ingest_stdf_file(lot.path, storage, file_id, register=catalog_registrar(catalog, storage)).ok
    assert not merged_by_compaction(catalog, ids[0])

    Compactor(catalog, CompactionSettings(force=True), storage_factory=Storage).run("stdf_files")
    assert merged_by_compaction(catalog, ids[0]) and merged_by_compaction(catalog, ids[1])
    assert not merged_by_compaction(catalog, "0" * 64), "never ingested"

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(STDF_PARTITIONS_NAME, [ids[0]])
    result = dg.materialize(
        [stdf_tables],
        instance=instance,
        partition_key=ids[0],
        tags={SOURCE_TAG: str(lots[0].path)},
        resources={"storage": StorageResource(root=str(root)), "catalog": CatalogResource(dsn=pg_dsn)},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "compacted into other files" in failure.step_failure_data.error.message
    files_rows = sum(f.rows for f in catalog.live_files("stdf_files"))
    assert files_rows == 2, "still one row per ingested file"
