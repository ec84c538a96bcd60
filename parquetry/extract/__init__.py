"""PostgreSQL tables -> raw binary COPY chunks -> Arrow -> Parquet partitions.

The one-call API is :func:`extract_table_to_parquet`; :func:`run_extraction` gives the ordered
chunk stream to any consumer (another decoder or engine).
"""

from parquetry.extract.errors import ExtractError, ProtocolError, ServerError
from parquetry.extract.spec import TableSpec, TableSpecError, load_table_specs

__all__ = [
    "ConsumeResult",
    "ExtractError",
    "ExtractOptions",
    "ExtractResult",
    "ParquetConsumer",
    "ProtocolError",
    "ServerError",
    "StagedChunk",
    "TableSpec",
    "TableSpecError",
    "extract_table_to_parquet",
    "load_table_specs",
    "run_extraction",
]


def __getattr__(name: str) -> object:
    # The pipeline pulls in psycopg and pyarrow; keep `import parquetry.extract` (specs) light.
    if name in ("ExtractOptions", "run_extraction"):
        from parquetry.extract import pipeline

        return getattr(pipeline, name)
    if name == "StagedChunk":
        from parquetry.extract.staging import StagedChunk

        return StagedChunk
    if name in ("ConsumeResult", "ExtractResult", "ParquetConsumer", "extract_table_to_parquet"):
        from parquetry.extract import parquet

        return getattr(parquet, name)
    raise AttributeError(name)
