"""PostgreSQL tables -> raw COPY chunks -> Arrow -> Parquet, one asset group per table spec.

The table list comes from the YAML file in ``$PARQUETRY_TABLES`` (default: ``config/tables.yaml``,
the demo database's customers, orders and order_items). For each spec three assets exist in group
``postgres``:

* ``postgres/raw_chunks/<name>``: the snapshot-consistent binary COPY stream, staged as chunk files;
* ``postgres/arrow/<name>``: the chunks decoded to Arrow record batches;
* ``postgres/parquet/<name>``: the Parquet files under ``<root>/<name>/[date=YYYY-MM-DD/]``.

Chunk files and Arrow batches are transient local state (a staging directory, memory), so the three
stages of a table run in one step (a ``multi_asset``); the first two assets record what passed
through them (rows, bytes, timings) as metadata. Specs with a ``time_column`` get daily partitions.

Importing this module reads the small YAML file and nothing else: no connection, no heavy import.
"""

import os
from pathlib import Path

import dagster as dg

from parquetry.extract.spec import TableSpec, load_table_specs
from pipeline_assets.metadata import standard_metadata
from pipeline_assets.policies import TRANSIENT_RETRY_POLICY, bad_data_fails_without_retry
from resources.catalog import CatalogResource
from resources.gpu import GpuResource
from resources.postgres import PostgresResource
from resources.storage import StorageResource

GROUP = "postgres"
GPU_POOL = "gpu"  # GPU steps share a Dagster pool so concurrent runs cannot oversubscribe a device
DEFAULT_TABLES = Path(__file__).resolve().parent.parent / "config" / "tables.yaml"


def tables_file() -> Path:
    """``$PARQUETRY_TABLES`` or the shipped ``config/tables.yaml``."""
    return Path(os.environ.get("PARQUETRY_TABLES") or DEFAULT_TABLES)


def raw_chunks_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, "raw_chunks", name])


def arrow_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, "arrow", name])


def parquet_key(name: str) -> dg.AssetKey:
    """The key of a table's Parquet dataset (what downstream assets depend on)."""
    return dg.AssetKey([GROUP, "parquet", name])


def partitions_for(spec: TableSpec) -> dg.DailyPartitionsDefinition | None:
    if spec.start_date is None:
        return None
    return dg.DailyPartitionsDefinition(start_date=spec.start_date, timezone="UTC")


def build_table_assets(spec: TableSpec) -> dg.AssetsDefinition:
    """The three assets of one table spec, materialized together in one step."""
    partitions_def = partitions_for(spec)
    source = spec.relation or "query"
    tags = {"parquetry/source": "postgres"}
    specs = [
        dg.AssetSpec(
            raw_chunks_key(spec.name),
            description=f"Binary COPY stream of {source}, read over ctid ranges in one snapshot.",
            group_name=GROUP,
            kinds={"postgres"},
            partitions_def=partitions_def,
            tags=tags,
        ),
        dg.AssetSpec(
            arrow_key(spec.name),
            description=f"{source} decoded to Arrow record batches.",
            deps=[raw_chunks_key(spec.name)],
            group_name=GROUP,
            kinds={"arrow"},
            partitions_def=partitions_def,
            tags=tags,
        ),
        dg.AssetSpec(
            parquet_key(spec.name),
            description=f"{source} as Parquet files under <root>/{spec.name}/"
            + ("date=YYYY-MM-DD/" if partitions_def else ""),
            deps=[arrow_key(spec.name)],
            group_name=GROUP,
            kinds={"parquet"},
            partitions_def=partitions_def,
            tags=tags,
        ),
    ]

    @dg.multi_asset(
        name=f"extract_{spec.name}",
        specs=specs,
        can_subset=False,
        retry_policy=TRANSIENT_RETRY_POLICY,
        op_tags={"parquetry/table": spec.name},
        pool=GPU_POOL,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def is not None else None,
    )
    def extract(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        storage: StorageResource,
        gpu: GpuResource,
        catalog: CatalogResource,
    ):
        from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS, extract_table_to_parquet

        # A single-run backfill hands this step a whole range of days: extract them one by one.
        partitions: list[str | None] = list(context.partition_keys) if partitions_def is not None else [None]
        store = storage.get_storage()
        parquet_options = storage.parquet_options(EXTRACT_PARQUET_OPTIONS)
        engine = gpu.select_engine()
        consumer_factory = gpu.consumer_factory() if engine.name == "gpu" else None
        context.log.info(f"{spec.name}: engine {engine.name} ({engine.reason})")
        results = []
        progress = RangeProgress(context.log.info)
        for partition in partitions:
            with bad_data_fails_without_retry():
                result = extract_table_to_parquet(
                    postgres.dsn,
                    spec,
                    store,
                    partition=partition,
                    options=postgres.extract_options(),
                    parquet_options=parquet_options,
                    consumer_factory=consumer_factory,
                    hooks=progress.hooks(f"{spec.name}{'/' + partition if partition else ''}"),
                )
            progress.close()
            t = result.timings
            context.log.info(
                f"{spec.name}{'/' + partition if partition else ''}: {result.rows} rows, "
                f"{result.stream_bytes} stream bytes -> {len(result.files)} file(s), "
                f"{result.parquet_bytes} bytes "
                f"in {t.get('wall_s', 0):.2f} s ({result.reader} reader, {result.workers} workers, "
                f"{result.engine})"
            )
            results.append(result)
            register_in_catalog(catalog, store, spec, partition, result)
        level = parquet_options.compression_level
        codec = parquet_options.compression + (f" level {level}" if level is not None else "")
        yield from _materializations(spec, store, partitions, results, codec, gpu.metadata())

    return extract


class RangeProgress:
    """Logs percent, rows, MB/s and ETA as ranges finish (at most every 10 s, and once when done).

    The total is the relations' heap size, which the COPY stream tracks closely but not exactly, so the
    percent is an estimate; views and queries have no size to go by and report rows and MB/s only.
    """

    def __init__(self, log) -> None:
        self.log = log
        self.current = None

    def hooks(self, label: str):
        from parquetry.extract.pipeline import ExtractHooks
        from parquetry.progress import Progress

        def on_plan(plan) -> None:
            total = plan.pages * 8192 if plan.pages else None
            self.current = Progress(total, unit="B", label=label, log=self.log, every_s=10.0)

        def after_task(task, rows: int, stream_bytes: int) -> None:
            self.current.advance(stream_bytes, rows=rows)

        return ExtractHooks(on_plan=on_plan, after_task=after_task)

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


def dataset_name(spec: TableSpec) -> str:
    """The catalog's name for a table's Parquet dataset."""
    return f"postgres_{spec.name}"


def register_in_catalog(catalog: CatalogResource, store, spec: TableSpec, partition, result) -> None:
    """Record the partition's new files; the files they replaced (same directory) are retired."""
    from parquetry.catalog.catalog import UnknownDataset
    from parquetry.extract.parquet import partition_dir

    cat = catalog.get_catalog()
    cat.migrate()
    name = dataset_name(spec)
    directory = partition_dir(store, spec.name, partition).rstrip("/") + "/"
    new_paths = {f.path for f in result.files}
    try:
        existing = cat.live_files(name)
    except UnknownDataset:
        existing = []
    replaced = [f.path for f in existing if f.path.startswith(directory) and f.path not in new_paths]
    cat.register_files(name, store.uri(store.path(spec.name)), result.files, result.schema, replaced)


def _sum_timings(results: list) -> dict[str, float]:
    total: dict[str, float] = {}
    for result in results:
        for key, value in result.timings.items():
            total[key] = total.get(key, 0.0) + value
    return total


def _materializations(spec: TableSpec, store, partitions, results, compression: str, gpu_metadata):
    """One materialization per asset; a multi-day run reports the days' totals."""
    from parquetry.extract.parquet import partition_dir

    rows = sum(r.rows for r in results)
    stream_bytes = sum(r.stream_bytes for r in results)
    parquet_bytes = sum(r.parquet_bytes for r in results)
    files = sum(len(r.files) for r in results)
    t = _sum_timings(results)
    last = results[-1]
    engine_name = last.engine.split(" ")[0]
    common = {"engine_detail": last.engine, **{f"gpu_{k}": v for k, v in gpu_metadata.items()}}
    if len(partitions) > 1:
        common["partitions"] = f"{partitions[0]}...{partitions[-1]} ({len(partitions)} days)"
    yield dg.MaterializeResult(
        asset_key=raw_chunks_key(spec.name),
        metadata=standard_metadata(
            rows=rows,
            bytes_written=stream_bytes,
            files=sum(r.chunks for r in results),
            engine=engine_name,
            elapsed_s=t.get("read_s"),
            stage_seconds={"plan_s": t.get("plan_s", 0.0), "read_s": t.get("read_s", 0.0)},
            extra={
                **common,
                "reader": last.reader,
                "workers": last.workers,
                "copy_tasks": sum(r.tasks for r in results),
                "relations": ", ".join(last.relations),
                "peak_staged_bytes": max(r.peak_staged_bytes for r in results),
            },
        ),
    )
    yield dg.MaterializeResult(
        asset_key=arrow_key(spec.name),
        metadata=standard_metadata(
            rows=rows,
            bytes_written=stream_bytes,
            engine=engine_name,
            elapsed_s=t.get("decode_s"),
            stage_seconds={"decode_s": t.get("decode_s", 0.0)},
            schema=last.schema,
            extra={**common, "batches": sum(r.batches for r in results)},
        ),
    )
    location = (
        partition_dir(store, spec.name, partitions[0]) if len(partitions) == 1 else store.path(spec.name)
    )
    yield dg.MaterializeResult(
        asset_key=parquet_key(spec.name),
        metadata=standard_metadata(
            rows=rows,
            bytes_written=parquet_bytes,
            files=files,
            engine=engine_name,
            elapsed_s=t.get("wall_s"),
            stage_seconds={k: v for k, v in t.items() if k != "wall_s"},
            schema=last.schema,
            location=store.uri(location),
            extra={
                **common,
                "stream_bytes": stream_bytes,
                "reader": last.reader,
                "client_cpu_s": round(sum(r.client_cpu_s for r in results), 3),
                "compression": compression,
            },
        ),
    )


def build_postgres_defs(specs: list[TableSpec]) -> dg.Definitions:
    return dg.Definitions(assets=[build_table_assets(spec) for spec in specs])


TABLE_SPECS: list[TableSpec] = load_table_specs(tables_file())
defs = build_postgres_defs(TABLE_SPECS)
