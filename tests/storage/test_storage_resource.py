"""The storage resource: unset encoding fields keep each writer's measured default, set ones win."""

from __future__ import annotations

import pytest

from parquetry.extract.parquet import EXTRACT_PARQUET_OPTIONS
from resources.storage import StorageResource, general_defaults


def test_unset_fields_keep_the_writers_own_defaults() -> None:
    resource = StorageResource(root="/data")
    assert resource.parquet_options(EXTRACT_PARQUET_OPTIONS) == EXTRACT_PARQUET_OPTIONS
    assert resource.parquet_options() == general_defaults()


def test_set_fields_apply_to_every_writer() -> None:
    resource = StorageResource(root="/data", compression_level=5, dictionary="all", row_group_rows=50_000)
    for defaults in (EXTRACT_PARQUET_OPTIONS, general_defaults()):
        options = resource.parquet_options(defaults)
        assert (options.compression, options.compression_level) == ("zstd", 5)
        assert options.use_dictionary is True and options.row_group_rows == 50_000
        assert options.target_file_rows == defaults.target_file_rows
        assert options.encode_threads == 1
    assert StorageResource(root="/data", encode_threads=4).parquet_options().encode_threads == 4


def test_the_encoder_is_parquetrys_unless_pyarrow_is_chosen() -> None:
    assert StorageResource(root="/data").parquet_options(EXTRACT_PARQUET_OPTIONS).encoder == "parquetry"
    assert StorageResource(root="/data", encoder="pyarrow").parquet_options().encoder == "pyarrow"
    with pytest.raises(ValueError, match="encoder must be"):
        StorageResource(root="/data", encoder="numpy").parquet_options()


def test_another_codec_does_not_inherit_the_writers_zstd_level() -> None:
    options = StorageResource(root="/data", compression="gzip").parquet_options(EXTRACT_PARQUET_OPTIONS)
    assert (options.compression, options.compression_level) == ("gzip", None)
    assert options.writer_kwargs()["compression"] == "gzip"
    assert "compression_level" not in options.writer_kwargs()


def test_delta_integers_can_be_turned_off() -> None:
    options = StorageResource(root="/data", delta_integers=False).parquet_options(EXTRACT_PARQUET_OPTIONS)
    assert options.delta_integers is False and options.compression_level == 1


def test_an_unknown_dictionary_choice_is_refused_with_the_field_name() -> None:
    with pytest.raises(ValueError, match=r"storage\.dictionary='some': choose one of all, none, auto"):
        StorageResource(root="/data", dictionary="some").parquet_options()
