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
