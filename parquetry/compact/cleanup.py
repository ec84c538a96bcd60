"""Delete what compaction replaced, once no reader can still need it.

A reader that took a catalog snapshot just before a commit may still open the old files, so retired files
stay on storage for ``grace_s`` seconds after they were retired. Separately, outputs of runs that died
before committing (``compacted-*`` files no catalog row knows) and ``.tmp-`` leftovers are removed once
they are older than the same grace period, so a compaction in flight is never disturbed.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from parquetry.catalog import Catalog
from parquetry.storage import TEMP_PREFIX, Storage

COMPACTED_PREFIX = "compacted-"


@dataclass
class CleanupResult:
    deleted: list[str] = field(default_factory=list)  # retired files removed from storage
    reused_paths: list[str] = field(default_factory=list)  # retired rows whose path a live file now holds
    orphans: list[str] = field(default_factory=list)  # uncommitted outputs and temporaries removed


def cleanup(
    catalog: Catalog,
    grace_s: float,
    storage_factory: Callable[[str], Storage] | None = None,
    sweep_orphans: bool = True,
) -> CleanupResult:
    factory = storage_factory or Storage
    storages: dict[str, Storage] = {}
    result = CleanupResult()

    def storage_for(uri: str) -> Storage:
        if uri not in storages:
            storages[uri] = factory(uri)
        return storages[uri]

    done: list[int] = []
    for retired in catalog.retired_files(grace_s):
        if catalog.path_is_live(retired.path):
            result.reused_paths.append(retired.path)  # overwritten in place and re-registered: keep it
        else:
            storage_for(retired.storage_uri).delete(retired.path)  # a missing file is fine (re-run)
            result.deleted.append(retired.path)
        done.append(retired.id)
    if done:
        catalog.mark_deleted(done)
    if sweep_orphans:
        cutoff = time.time() - grace_s
        for name in catalog.datasets():
            info = catalog.dataset(name)
            if info.compaction_in_progress:
                continue  # a long run's outputs may be older than the grace period but about to commit
            result.orphans.extend(_sweep(storage_for(info.storage_uri), catalog.known_paths(name), cutoff))
    return result


def _sweep(storage: Storage, known: set[str], cutoff: float) -> list[str]:
    removed = []
    selector = pafs.FileSelector(storage.base, recursive=True, allow_not_found=True)
    for info in storage.fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        base = posixpath.basename(info.path)
        ours = base.startswith(COMPACTED_PREFIX) or (
            base.startswith(TEMP_PREFIX) and COMPACTED_PREFIX in base
        )
        if not ours or info.path in known or info.mtime is None or info.mtime.timestamp() > cutoff:
            continue
        storage.fs.delete_file(info.path)
        removed.append(info.path)
    return removed
