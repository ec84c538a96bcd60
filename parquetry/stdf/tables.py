"""Arrow schemas of the STDF tables and the builders that turn decoded arrays into record batches.

Every table carries ``file_id`` (the content hash the caller passes), so tables of many files can be
stacked and joined: results -> parts on (file_id, part_seq), results -> tests on (file_id, test_id).
Record ordinals (``*rec_index``: position of the record in the file, FAR = 0) give a stable order.
Omitted STDF fields are null, never 0 or "". docs/stdf.md describes every column.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from parquetry.stdf import hot as H

u8, u16, u32, i8, i16, i32, i64 = (
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
)
f32, f64, s, b = pa.float32(), pa.float64(), pa.string(), pa.bool_()
ts = pa.timestamp("s", tz="UTC")
# Dictionary-encoded strings for the repetitive columns of the biggest table: the batch carries each
# distinct value once (file id, record type, test name) and an int32 index per row.
ds = pa.dictionary(pa.int32(), pa.string())


def _schema(*cols: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in cols])


def _not_null(never_null: tuple[str, ...], *cols: tuple[str, pa.DataType]) -> pa.Schema:
    """A schema whose columns ``never_null`` are declared non-nullable: Parquet then stores no
    definition levels for them (about 5 ns per row and column of writing time on the biggest table)."""
    return pa.schema([pa.field(n, t, nullable=n not in never_null) for n, t in cols])


MIR_COLUMNS = [
    ("setup_t", u32), ("start_t", u32), ("stat_num", u8), ("mode_cod", s), ("rtst_cod", s), ("prot_cod", s),
    ("burn_tim", u16), ("cmod_cod", s), ("lot_id", s), ("part_typ", s), ("node_nam", s), ("tstr_typ", s),
    ("job_nam", s), ("job_rev", s), ("sblot_id", s), ("oper_nam", s), ("exec_typ", s), ("exec_ver", s),
    ("test_cod", s), ("tst_temp", s), ("user_txt", s), ("aux_file", s), ("pkg_typ", s), ("famly_id", s),
    ("date_cod", s), ("facil_id", s), ("floor_id", s), ("proc_id", s), ("oper_frq", s), ("spec_nam", s),
    ("spec_ver", s), ("flow_id", s), ("setup_id", s), ("dsgn_rev", s), ("eng_id", s), ("rom_cod", s),
    ("serl_num", s), ("supr_nam", s),
]  # fmt: skip
MRR_COLUMNS = [("finish_t", u32), ("disp_cod", s), ("usr_desc", s), ("exc_desc", s)]
WCR_COLUMNS = [
    ("wafr_siz", f32), ("die_ht", f32), ("die_wid", f32), ("wf_units", u8), ("wf_flat", s),
    ("center_x", i16), ("center_y", i16), ("pos_x", s), ("pos_y", s),
]  # fmt: skip

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "files": _schema(
        ("file_id", s), ("file_name", s), ("sha256", s), ("compression", s), ("byte_order", s),
        ("cpu_type", u8), ("stdf_ver", u8), ("stdf_version", s), ("stream_bytes", i64), ("records", i64),
        ("record_counts", pa.map_(s, i64)), ("parts", i64), ("results", i64), ("tests", i64),
        ("setup_time", ts), ("start_time", ts), ("finish_time", ts),
        *MIR_COLUMNS, *MRR_COLUMNS, *WCR_COLUMNS, ("warnings", pa.list_(s)),
    ),
    "parts": _schema(
        ("file_id", s), ("part_seq", i64), ("head_num", u8), ("site_num", u8), ("part_id", s),
        ("part_txt", s), ("x_coord", i16), ("y_coord", i16), ("hard_bin", u16), ("soft_bin", u16),
        ("part_flg", u8), ("passed", b), ("retest", b), ("abnormal_end", b), ("num_test", u16),
        ("test_t", u32), ("part_fix", pa.binary()), ("pir_rec_index", i64), ("prr_rec_index", i64),
    ),
    "tests": _schema(
        ("file_id", s), ("test_id", i32), ("rec_type", s), ("test_num", u32), ("test_txt", s),
        ("opt_flag", u8), ("res_scal", i8), ("llm_scal", i8), ("hlm_scal", i8), ("lo_limit", f32),
        ("hi_limit", f32), ("units", s), ("c_resfmt", s), ("c_llmfmt", s), ("c_hlmfmt", s), ("units_in", s),
        ("lo_spec", f32), ("hi_spec", f32), ("start_in", f32), ("incr_in", f32),
        ("rtn_indx", pa.list_(u16)), ("first_rec_index", i64), ("first_head_num", u8),
        ("first_site_num", u8), ("result_count", i64),
    ),
    "results": _not_null(
        ("file_id", "rec_index", "rec_type", "test_id", "test_num", "head_num", "site_num"),
        ("file_id", ds), ("part_seq", i64), ("rec_index", i64), ("rec_type", ds), ("test_id", i32),
        ("test_num", u32), ("test_txt", ds), ("head_num", u8), ("site_num", u8), ("value", f32),
        ("test_flg", u8), ("parm_flg", u8), ("pin_index", u16), ("rtn_stat", u8), ("lo_limit", f32),
        ("hi_limit", f32), ("alarm_id", s),
    ),
    "bins": _schema(
        ("file_id", s), ("rec_index", i64), ("bin_type", s), ("head_num", u8), ("site_num", u8),
        ("all_sites", b), ("bin_num", u16), ("bin_cnt", u32), ("bin_pf", s), ("bin_nam", s),
    ),
    "wafers": _schema(
        ("file_id", s), ("head_num", u8), ("site_grp", u8), ("wafer_id", s), ("start_t", u32),
        ("finish_t", u32), ("part_cnt", u32), ("rtst_cnt", u32), ("abrt_cnt", u32), ("good_cnt", u32),
        ("func_cnt", u32), ("fabwf_id", s), ("frame_id", s), ("mask_id", s), ("usr_desc", s),
        ("exc_desc", s), ("wir_rec_index", i64), ("wrr_rec_index", i64),
    ),
    "test_summaries": _schema(
        ("file_id", s), ("rec_index", i64), ("head_num", u8), ("site_num", u8), ("all_sites", b),
        ("test_typ", s), ("test_num", u32), ("exec_cnt", u32), ("fail_cnt", u32), ("alrm_cnt", u32),
        ("test_nam", s), ("seq_name", s), ("test_lbl", s), ("opt_flag", u8), ("test_tim", f32),
        ("test_min", f32), ("test_max", f32), ("tst_sums", f32), ("tst_sqrs", f32),
    ),
    "part_counts": _schema(
        ("file_id", s), ("rec_index", i64), ("head_num", u8), ("site_num", u8), ("all_sites", b),
        ("part_cnt", u32), ("rtst_cnt", u32), ("abrt_cnt", u32), ("good_cnt", u32), ("func_cnt", u32),
    ),
    "records_other": _schema(
        ("file_id", s), ("rec_index", i64), ("offset", i64), ("rec_type", s), ("rec_typ", u8),
        ("rec_sub", u8), ("fields", s),
    ),
}  # fmt: skip

REC_TYPE_NAMES = pa.array(["PTR", "MPR", "FTR"], s)


def const_string(value: str, n: int) -> pa.Array:
    """A string column holding ``value`` n times, built straight from buffers."""
    raw = value.encode()
    offsets = (np.arange(n + 1, dtype=np.int64) * len(raw)).astype(np.int32)
    data = np.frombuffer(raw * n, dtype=np.uint8) if n and raw else np.zeros(0, np.uint8)
    return pa.Array.from_buffers(s, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def strings_from(
    gather, src: np.ndarray, offs: np.ndarray, lens: np.ndarray, binary: bool = False
) -> pa.Array:
    """Arrow strings (or binary) from (offset, length) pairs into ``src``; a negative length is null."""
    n = len(offs)
    if n and not (lens >= 0).any():  # e.g. ALARM_ID of a chunk of PTRs: nothing to gather
        return pa.nulls(n, pa.binary() if binary else s)
    if binary:
        out_off = np.zeros(n + 1, np.int32)
        ln = np.maximum(lens, 0)
        np.cumsum(ln, out=out_off[1:])
        data = (
            np.concatenate([src[o : o + k] for o, k in zip(offs.tolist(), ln.tolist(), strict=True)])
            if n
            else []
        )
        valid = lens >= 0
        data = np.asarray(data, np.uint8)
    else:
        out_off, data, valid = gather(src, offs.astype(np.int64), lens.astype(np.int64), n)
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.binary() if binary else s, n, [validity, pa.py_buffer(out_off), pa.py_buffer(data)]
    )


def pooled(values: np.ndarray, dtype) -> pa.Buffer:
    """A copy of ``values`` (cast to ``dtype``) in memory from pyarrow's pool.

    Why not numpy: every chunk's columns are big, fresh allocations that live on in the writer's queue,
    so numpy's allocator keeps mapping new pages and returning them to the system, and each new page
    costs a fault (measured: 40 ns per result row to build a batch). pyarrow's pool (mimalloc or
    jemalloc) keeps freed pages for the next chunk: 7 ns per row.
    """
    dt = np.dtype(dtype)
    buffer = pa.allocate_buffer(len(values) * dt.itemsize)
    np.copyto(np.frombuffer(buffer, dt), values, casting="unsafe")
    return buffer


def _col(values: np.ndarray, typ: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
    """A column from a copy of ``values`` (never a view: output arrays are reused).

    Built from buffers: the copy in the column's type becomes the data buffer as is, and the validity
    bitmap is packed only when there is a null (three times cheaper than ``pa.array(..., mask=)``).
    """
    data = pooled(values, typ.to_pandas_dtype())
    bitmap = None
    if null is not None and null.any():
        bitmap = pa.py_buffer(np.packbits(~null, bitorder="little"))
    return pa.Array.from_buffers(typ, len(values), [bitmap, data])


def const_dict(value: str, n: int) -> pa.DictionaryArray:
    return _dict(_zeros_i32(n), pa.array([value], s))


def _zeros_i32(n: int) -> pa.Buffer:
    buffer = pa.allocate_buffer(4 * n)
    np.frombuffer(buffer, np.int32)[:] = 0
    return buffer


def _dict(indices: pa.Buffer, dictionary: pa.Array) -> pa.DictionaryArray:
    """Dictionary column over int32 ``indices`` (owned by the column: never a view of a reused
    array), which the kernel guarantees in range (no per-row check)."""
    idx = pa.Array.from_buffers(i32, indices.size // 4, [None, indices])
    return pa.DictionaryArray.from_arrays(idx, dictionary, safe=False)


def results_batch(
    file_id: str, gather, buf: np.ndarray, R_L, R_I, R_F, m: int, names: pa.Array
) -> pa.RecordBatch:
    """Copies out of the kernel's output arrays (they are reused for the next chunk)."""
    rl = R_L[:, :m]
    ri = R_I[:, :m]
    rf = R_F[:, :m]
    valid = ri[H.RI_VALID]
    test_ids = pooled(ri[H.RI_TEST], np.int32)
    cols = [
        const_dict(file_id, m),
        _col(rl[H.RL_PART], i64, rl[H.RL_PART] < 0),
        _col(rl[H.RL_REC], i64),
        _dict(pooled(ri[H.RI_KIND], np.int32), REC_TYPE_NAMES),
        pa.Array.from_buffers(i32, m, [None, test_ids]),
        _col(ri[H.RI_NUM].view(np.uint32), u32),
        _dict(test_ids, names),
        _col(ri[H.RI_HEAD], u8),
        _col(ri[H.RI_SITE], u8),
        _col(rf[H.RF_VALUE], f32, (valid & 1) == 0),
        _col(ri[H.RI_TFLG], u8, ri[H.RI_TFLG] < 0),
        _col(ri[H.RI_PFLG], u8, ri[H.RI_PFLG] < 0),
        _col(ri[H.RI_PIN], u16, ri[H.RI_PIN] < 0),
        _col(ri[H.RI_STAT], u8, ri[H.RI_STAT] < 0),
        _col(rf[H.RF_LO], f32, (valid & 2) == 0),
        _col(rf[H.RF_HI], f32, (valid & 4) == 0),
        strings_from(gather, buf, ri[H.RI_ALARM_OFF], ri[H.RI_ALARM_LEN]),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=TABLE_SCHEMAS["results"])


def parts_batch(file_id: str, gather, buf: np.ndarray, P_I, q: int) -> pa.RecordBatch:
    pi = P_I[:, :q]
    nf = pi[H.PI_NFIELDS]

    def miss(k: int) -> np.ndarray:  # field k (0-based in the PRR) omitted
        return nf <= k

    flg = pi[H.PI_FLG]
    flg_null = miss(2)
    lens = {
        c: np.where(nf > k, pi[c], -1) for c, k in ((H.PI_ID_LEN, 9), (H.PI_TXT_LEN, 10), (H.PI_FIX_LEN, 11))
    }
    passed_null = flg_null | ((flg & 16) != 0)
    cols = [
        const_string(file_id, q),
        _col(pi[H.PI_SEQ], i64),
        _col(pi[H.PI_HEAD], u8),
        _col(pi[H.PI_SITE], u8),
        strings_from(gather, buf, pi[H.PI_ID_OFF], lens[H.PI_ID_LEN]),
        strings_from(gather, buf, pi[H.PI_TXT_OFF], lens[H.PI_TXT_LEN]),
        _col(pi[H.PI_X], i16, miss(6)),
        _col(pi[H.PI_Y], i16, miss(7)),
        _col(pi[H.PI_HBIN], u16, miss(4)),
        _col(pi[H.PI_SBIN], u16, miss(5)),
        _col(flg, u8, flg_null),
        pa.array((flg & 8) == 0, b, mask=passed_null),
        pa.array((flg & 3) != 0, b, mask=flg_null),
        pa.array((flg & 4) != 0, b, mask=flg_null),
        _col(pi[H.PI_NUM_TEST], u16, miss(3)),
        _col(pi[H.PI_TEST_T], u32, miss(8)),
        strings_from(gather, buf, pi[H.PI_FIX_OFF], lens[H.PI_FIX_LEN], binary=True),
        _col(pi[H.PI_PIR_REC], i64, pi[H.PI_PIR_REC] < 0),
        _col(pi[H.PI_PRR_REC], i64, pi[H.PI_PRR_REC] < 0),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=TABLE_SCHEMAS["parts"])


def test_names(gather, state: H.HotState) -> pa.Array:
    n = int(state.st[H.S_TESTS])
    return strings_from(gather, state.pool, state.T_I[H.TI_NAME_OFF, :n], state.T_I[H.TI_NAME_LEN, :n])


def tests_batch(file_id: str, gather, state: H.HotState) -> pa.RecordBatch:
    n = int(state.st[H.S_TESTS])
    ti = state.T_I[:, :n]
    tf = state.T_F[:, :n]
    vb = ti[H.TI_VALID]

    def fcol(c: int) -> pa.Array:
        return _col(tf[c], f32, ((vb >> c) & 1) == 0)

    def scol(c: int) -> pa.Array:
        return strings_from(gather, state.pool, ti[H.TI_UNITS_OFF + c], ti[H.TI_UNITS_LEN + c])

    def scal(c: int) -> pa.Array:
        return _col(np.where(ti[c] == H.NOSCAL, 0, ti[c]), i8, ti[c] == H.NOSCAL)

    # RTN_INDX lists, gathered from the pin-index pool in one go (a V93000 file has thousands of tests)
    ln = ti[H.TI_INDX_LEN]
    cnt = np.maximum(ln, 0)
    list_off = np.zeros(n + 1, np.int32)
    np.cumsum(cnt, out=list_off[1:])
    where = np.repeat(ti[H.TI_INDX_OFF] - list_off[:-1], cnt) + np.arange(int(list_off[-1]), dtype=np.int64)
    indx = pa.ListArray.from_arrays(
        pa.array(list_off), pa.array(state.ipool[where], u16), mask=pa.array(ln < 0, b)
    )
    cols = [
        const_string(file_id, n),
        pa.array(np.arange(n, dtype=np.int32), i32),
        REC_TYPE_NAMES.take(pa.array(ti[H.TI_KIND].astype(np.int8))),
        _col(ti[H.TI_NUM], u32),
        test_names(gather, state),
        _col(np.maximum(ti[H.TI_OPT], 0), u8, ti[H.TI_OPT] < 0),
        scal(H.TI_RES_SCAL),
        scal(H.TI_LLM_SCAL),
        scal(H.TI_HLM_SCAL),
        fcol(H.TF_LO),
        fcol(H.TF_HI),
        scol(0),
        scol(1),
        scol(2),
        scol(3),
        scol(4),
        fcol(H.TF_LO_SPEC),
        fcol(H.TF_HI_SPEC),
        fcol(H.TF_START_IN),
        fcol(H.TF_INCR_IN),
        indx,
        _col(ti[H.TI_FIRST_REC], i64),
        _col(ti[H.TI_HEAD], u8),
        _col(ti[H.TI_SITE], u8),
        _col(ti[H.TI_COUNT], i64),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=TABLE_SCHEMAS["tests"])


_STRUCTS = {name: pa.struct(list(schema)) for name, schema in TABLE_SCHEMAS.items()}


def rows_batch(table: str, rows: list[dict]) -> pa.RecordBatch:
    """A batch from Python rows (the rare records), missing keys are null.

    One conversion of the dicts to a struct array (a C++ loop over the rows) rather than a Python list
    per column: the ``files`` row alone has 70 columns, and every file pays for it (3.5x faster).
    """
    return pa.RecordBatch.from_struct_array(pa.array(rows, type=_STRUCTS[table]))
