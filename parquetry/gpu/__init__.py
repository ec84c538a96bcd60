"""Parquetry's GPU path: COPY BINARY chunks decoded by numba-cuda kernels, written through cuDF or pyarrow.

Nothing here imports numba, CUDA, cuDF, RMM or kvikio at import time. Entry points:

* :func:`parquetry.gpu.engine.select_engine`: which engine runs, and why;
* :func:`parquetry.gpu.decode.decode_chunk_gpu`: one chunk -> ``pa.Table`` (identical to the CPU decoder);
* :func:`parquetry.gpu.cudf_io.decode_chunk_to_cudf`: one chunk in device memory -> ``cudf.DataFrame``;
* :func:`parquetry.gpu.consumer.gpu_consumer_factory`: the extraction pipeline's GPU consumer;
* :class:`parquetry.gpu.pool.RmmPool`: the RMM pool a step process uses.
"""
