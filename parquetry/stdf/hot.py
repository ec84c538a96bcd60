"""Numba decoding of the high-volume records: PIR, PRR, PTR, MPR, FTR.

One pass over a chunk of framed records, in file order, because the records depend on each other:
a PIR opens a part on its (HEAD_NUM, SITE_NUM), each result belongs to the part open on its own
head/site, a PRR closes it; the first PTR/MPR of a test sets the defaults (limits, units, scales,
formats) that later records of the same test may omit. That state lives in numpy arrays owned by
``HotState`` and survives from one chunk to the next, so a file streams in bounded memory.

Tests are keyed by (record kind, TEST_NUM, TEST_TXT) in an open-addressing hash table over those
arrays (exact byte comparison, no reliance on hash uniqueness). A record whose TEST_TXT is omitted
or empty belongs to the first test defined in the file with the same kind and TEST_NUM.

The kernel stops and asks for more room (status NEED_ROOM) before a new test would overflow the
test arrays, the name pool or the hash tables; the caller grows them and resumes at the same record.
"""

from __future__ import annotations

import numpy as np

# Record codes (REC_TYP * 256 + REC_SUB).
C_PIR = 5 * 256 + 10
C_PRR = 5 * 256 + 20
C_PTR = 15 * 256 + 10
C_MPR = 15 * 256 + 15
C_FTR = 15 * 256 + 20
HOT_CODES = (C_PIR, C_PRR, C_PTR, C_MPR, C_FTR)

KIND_PTR = 0
KIND_MPR = 1
KIND_FTR = 2

OK = 0
NEED_ROOM = 1

# Scalar state (st array).
S_PARTS = 0  # parts opened so far (next part_seq)
S_TESTS = 1  # tests defined so far
S_POOL = 2  # bytes used in the name pool
S_IPOOL = 3  # entries used in the pin-index pool
S_NRES = 4  # result rows written in this chunk
S_NPARTS = 5  # part rows written in this chunk
S_PARTIAL = 6  # fields cut by REC_LEN mid-way (treated as omitted)
S_SHORT = 7  # hot records too short to carry their identifying fields (not decoded)
S_ORPHAN_PRR = 8  # PRR without an open part (given a part_seq of their own)
S_UNCLOSED = 9  # PIR that reopened a head/site whose part had no PRR
S_RESULTS_TOTAL = 10
N_STATE = 16

# Test integer columns (T_I[col, test]).
TI_KIND = 0
TI_NUM = 1
TI_NAME_OFF = 2
TI_NAME_LEN = 3  # -1: no name
TI_OPT = 4  # -1: OPT_FLAG omitted
TI_RES_SCAL = 5  # NOSCAL: omitted
TI_LLM_SCAL = 6
TI_HLM_SCAL = 7
TI_UNITS_OFF = 8  # 8..12: offsets of UNITS, C_RESFMT, C_LLMFMT, C_HLMFMT, UNITS_IN in the pool
TI_UNITS_LEN = 13  # 13..17: their lengths (-1 omitted)
TI_INDX_OFF = 18
TI_INDX_LEN = 19  # -1: RTN_INDX omitted
TI_FIRST_REC = 20
TI_COUNT = 21
TI_HEAD = 22
TI_SITE = 23
TI_VALID = 24  # bit i: float column i valid
TI_NEXT = 25  # the test that followed this one last time on the same head/site (-1: none yet)
N_TI = 26
NOSCAL = 1000

# Test float columns (T_F[col, test]).
TF_LO = 0
TF_HI = 1
TF_LO_SPEC = 2
TF_HI_SPEC = 3
TF_START_IN = 4
TF_INCR_IN = 5
N_TF = 6

# Result columns: int64 ones (R_L[col, row]) and int32 ones (R_I[col, row]; TEST_NUM is stored as
# its uint32 bit pattern). -1 means null where a column is nullable. Narrow types keep the output
# arrays small: they are written once per row and their pages are the kernel's main memory traffic.
RL_PART = 0
RL_REC = 1
N_RL = 2
RI_TEST = 0
RI_NUM = 1
RI_HEAD = 2
RI_SITE = 3
RI_TFLG = 4
RI_PFLG = 5
RI_PIN = 6
RI_STAT = 7
RI_KIND = 8
RI_ALARM_OFF = 9
RI_ALARM_LEN = 10
RI_VALID = 11  # bit0 value, bit1 lo, bit2 hi
N_RI = 12

RF_VALUE = 0
RF_LO = 1
RF_HI = 2
N_RF = 3

# Part integer columns (P_I[col, row]).
PI_SEQ = 0
PI_HEAD = 1
PI_SITE = 2
PI_FLG = 3
PI_NUM_TEST = 4
PI_HBIN = 5
PI_SBIN = 6
PI_X = 7
PI_Y = 8
PI_TEST_T = 9
PI_ID_OFF = 10
PI_ID_LEN = 11
PI_TXT_OFF = 12
PI_TXT_LEN = 13
PI_FIX_OFF = 14
PI_FIX_LEN = 15
PI_PIR_REC = 16  # -1: no PIR
PI_PRR_REC = 17  # -1: no PRR (part still open at end of file, or reopened)
PI_NFIELDS = 18  # PRR fields present (0..12)
N_PI = 19

SENTINEL_NAME_ROOM = 6 * 256 + 16
# MPR carries UNITS, UNITS_IN, C_RESFMT, C_LLMFMT, C_HLMFMT: their columns among TI_UNITS_OFF + 0..4
MPR_STR_ORDER = (0, 4, 1, 2, 3)


def _u2(buf, p, big):
    q = np.uint64(p)  # unsigned index: numba adds no negative-index fix-up
    if big:
        return (np.int64(buf[q]) << 8) | np.int64(buf[q + np.uint64(1)])
    return np.int64(buf[q]) | (np.int64(buf[q + np.uint64(1)]) << 8)


def _u4(buf, p, big):
    q = np.uint64(p)
    b0 = np.int64(buf[q])
    b1 = np.int64(buf[q + np.uint64(1)])
    b2 = np.int64(buf[q + np.uint64(2)])
    b3 = np.int64(buf[q + np.uint64(3)])
    if big:
        return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
    return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)


def _i2(buf, p, big):
    v = _u2(buf, p, big)
    return v - 65536 if v >= 32768 else v


def _i4(buf, p, big):
    v = _u4(buf, p, big)
    return v - 4294967296 if v >= 2147483648 else v


def _i1(buf, p):
    v = np.int64(buf[p])
    return v - 256 if v >= 128 else v


def _hash(kind, num, buf, off, ln):
    h = np.uint64(14695981039346656037)
    prime = np.uint64(1099511628211)
    h = (h ^ np.uint64(kind + 1)) * prime
    for s in range(4):
        h = (h ^ np.uint64((num >> (8 * s)) & 255)) * prime
    h = (h ^ np.uint64(ln + 7)) * prime
    for j in range(max(ln, 0)):
        h = (h ^ np.uint64(buf[off + j])) * prime
    return h


def _find_or_add(kind, num, buf, name_off, name_len, rec, head, site, T_I, h_full, h_num, pool, st):
    """Return the test id for (kind, num, name); -1 when a new test needs room first.

    name_len < 1 means "no name": the first test defined with (kind, num) is used (or created).
    """
    mask = np.uint64(h_full.shape[0] - 1)
    if name_len >= 1:
        h = _hash(kind, num, buf, name_off, name_len)
        slot = h & mask
        while True:
            tid = h_full[slot] - 1
            if tid < 0:
                break
            if T_I[TI_KIND, tid] == kind and T_I[TI_NUM, tid] == num and T_I[TI_NAME_LEN, tid] == name_len:
                po = T_I[TI_NAME_OFF, tid]
                same = True
                for j in range(name_len):
                    if pool[po + j] != buf[name_off + j]:
                        same = False
                        break
                if same:
                    return tid
            slot = (slot + np.uint64(1)) & mask
        # new named test
        n = st[S_TESTS]
        if (
            n >= T_I.shape[1]
            or st[S_POOL] + SENTINEL_NAME_ROOM > pool.shape[0]
            or 2 * (n + 1) > h_full.shape[0]
        ):
            return -1
        tid = n
        st[S_TESTS] = n + 1
        h_full[slot] = tid + 1
        po = st[S_POOL]
        for j in range(name_len):
            pool[po + j] = buf[name_off + j]
        st[S_POOL] = po + name_len
        T_I[TI_NAME_OFF, tid] = po
        T_I[TI_NAME_LEN, tid] = name_len
    else:
        tid = -1
    # (kind, num) index: first test defined with this number
    h2 = _hash(kind, num, buf, 0, -1)
    slot2 = h2 & mask
    while True:
        t2 = h_num[slot2] - 1
        if t2 < 0:
            break
        if T_I[TI_KIND, t2] == kind and T_I[TI_NUM, t2] == num:
            break
        slot2 = (slot2 + np.uint64(1)) & mask
    if tid < 0:
        if t2 >= 0:
            return t2
        n = st[S_TESTS]
        if (
            n >= T_I.shape[1]
            or st[S_POOL] + SENTINEL_NAME_ROOM > pool.shape[0]
            or 2 * (n + 1) > h_full.shape[0]
        ):
            return -1
        tid = n
        st[S_TESTS] = n + 1
        T_I[TI_NAME_OFF, tid] = 0
        T_I[TI_NAME_LEN, tid] = -1
    if t2 < 0:
        h_num[slot2] = tid + 1
    T_I[TI_KIND, tid] = kind
    T_I[TI_NUM, tid] = num
    T_I[TI_FIRST_REC, tid] = rec
    T_I[TI_COUNT, tid] = 0
    T_I[TI_HEAD, tid] = head
    T_I[TI_SITE, tid] = site
    T_I[TI_OPT, tid] = -1
    T_I[TI_RES_SCAL, tid] = NOSCAL
    T_I[TI_LLM_SCAL, tid] = NOSCAL
    T_I[TI_HLM_SCAL, tid] = NOSCAL
    for c in range(5):
        T_I[TI_UNITS_OFF + c, tid] = 0
        T_I[TI_UNITS_LEN + c, tid] = -1
    T_I[TI_INDX_OFF, tid] = 0
    T_I[TI_INDX_LEN, tid] = -1
    T_I[TI_VALID, tid] = 0
    T_I[TI_NEXT, tid] = -1
    return tid


def _lookup(kind, num, buf, name_off, name_len, rec, head, site, hs, T_I, h_full, h_num, pool, st, last_test):
    """Test id of a result; first tries the test that followed the previous one on this head/site.

    Test programs run their tests in the same order part after part, so the guess is nearly always
    right and costs one byte comparison of the name instead of hashing it; a wrong guess falls back
    to the hash table. Either way the answer is exact.
    """
    prev = last_test[hs]
    tid = np.int64(-1)
    if name_len >= 1 and prev >= 0:
        cand = T_I[TI_NEXT, prev]
        if (
            cand >= 0
            and T_I[TI_NUM, cand] == num
            and T_I[TI_KIND, cand] == kind
            and T_I[TI_NAME_LEN, cand] == name_len
        ):
            # branch-free over unsigned indices: numba adds no negative-index fix-up, and the loop
            # compiles to a few wide compares (a byte loop with an early exit cost 15 ns a record)
            po = np.uint64(T_I[TI_NAME_OFF, cand])
            no = np.uint64(name_off)
            diff = np.uint8(0)
            for j in range(np.uint64(name_len)):
                diff |= pool[po + j] ^ buf[no + j]
            if diff == 0:
                tid = cand
    if tid < 0:
        tid = _find_or_add(kind, num, buf, name_off, name_len, rec, head, site, T_I, h_full, h_num, pool, st)
        if tid < 0:
            return tid
    if prev >= 0:
        T_I[TI_NEXT, prev] = tid
    last_test[hs] = tid
    return tid


def _cn(buf, p, end):
    """(start of text, length, next position); length -1 when omitted, -2 when cut by REC_LEN."""
    if p >= end:
        return p, -1, p
    ln = np.int64(buf[p])
    if p + 1 + ln > end:
        return p, -2, end
    return p + 1, ln, p + 1 + ln


def _store_str(buf, off, ln, tid, col, T_I, pool, st):
    if ln >= 0:
        po = st[S_POOL]
        for j in range(ln):
            pool[po + j] = buf[off + j]
        st[S_POOL] = po + ln
        T_I[TI_UNITS_OFF + col, tid] = po
        T_I[TI_UNITS_LEN + col, tid] = ln


def _f4(buf, p, big):
    """An R*4 field, bit for bit (NaN payloads included)."""
    return np.uint32(_u4(buf, p, big)).view(np.float32)


def _decode_impl(
    buf,
    offs,
    lens,
    codes,
    start,
    nrec,
    big,
    rec_base,
    st,
    open_part,
    open_pir,
    last_test,
    T_I,
    T_F,
    h_full,
    h_num,
    pool,
    ipool,
    R_L,
    R_I,
    R_F,
    P_I,
):
    for i in range(start, nrec):
        code = codes[i]
        p0 = offs[i] + 4
        end = p0 + lens[i]
        rec = rec_base + i
        if code == C_PTR or code == C_MPR or code == C_FTR:  # noqa: SIM109 - plain compares for numba
            if end - p0 < 6:
                st[S_SHORT] += 1
                continue
            num = _u4(buf, p0, big)
            head = np.int64(buf[p0 + 4])
            site = np.int64(buf[p0 + 5])
            hs = head * 256 + site
            tflg = np.int64(-1)
            pflg = np.int64(-1)
            nr = np.int64(1)
            valid = np.int64(0)
            if p0 + 7 <= end:
                tflg = np.int64(buf[p0 + 6])
            if code == C_PTR:
                kind = KIND_PTR
                if p0 + 8 <= end:
                    pflg = np.int64(buf[p0 + 7])
                has_val = p0 + 12 <= end
                val = np.float32(0)
                if has_val:
                    val = _f4(buf, p0 + 8, big)
                elif p0 + 8 < end:
                    st[S_PARTIAL] += 1
                p = min(p0 + 12, end)
                t_off, t_len, p = _cn(buf, p, end)
                a_off, a_len, p = _cn(buf, p, end)
                if t_len == -2 or a_len == -2:
                    st[S_PARTIAL] += 1
                tid = _lookup(
                    kind, num, buf, t_off, t_len, rec, head, site, hs, T_I, h_full, h_num, pool, st, last_test
                )
                if tid < 0:
                    return i, NEED_ROOM
                opt = np.int64(-1)
                if p < end:
                    opt = np.int64(buf[p])
                p += 1
                # positions of the tail fields
                p_rs = p
                p_lo = p + 3
                p_hi = p + 7
                p_after = p + 11
                first = T_I[TI_COUNT, tid] == 0 and T_I[TI_FIRST_REC, tid] == rec
                if first:
                    _set_defaults(
                        buf,
                        big,
                        tid,
                        opt,
                        p_rs,
                        p_lo,
                        p_hi,
                        p_after,
                        end,
                        True,
                        T_I,
                        T_F,
                        pool,
                        st,
                    )
                r = st[S_NRES]
                st[S_NRES] = r + 1
                valid = np.int64(1) if has_val else np.int64(0)
                R_F[RF_VALUE, r] = val
                R_I[RI_PIN, r] = -1
                R_I[RI_STAT, r] = -1
                valid |= _limits(buf, big, tid, opt, p_lo, p_hi, end, T_I, T_F, R_F, r)
            elif code == C_MPR:
                kind = KIND_MPR
                if p0 + 8 <= end:
                    pflg = np.int64(buf[p0 + 7])
                icnt = np.int64(0)
                rcnt = np.int64(0)
                if p0 + 10 <= end:
                    icnt = _u2(buf, p0 + 8, big)
                if p0 + 12 <= end:
                    rcnt = _u2(buf, p0 + 10, big)
                p_stat = p0 + 12
                n_stat_bytes = (icnt + 1) // 2
                p_rslt = p_stat + n_stat_bytes
                p = p_rslt + 4 * rcnt
                if p > end:
                    # arrays cut by REC_LEN: keep what fits
                    st[S_PARTIAL] += 1
                    p = end
                t_off, t_len, p = _cn(buf, p, end)
                a_off, a_len, p = _cn(buf, p, end)
                if t_len == -2 or a_len == -2:
                    st[S_PARTIAL] += 1
                tid = _lookup(
                    kind, num, buf, t_off, t_len, rec, head, site, hs, T_I, h_full, h_num, pool, st, last_test
                )
                if tid < 0:
                    return i, NEED_ROOM
                opt = np.int64(-1)
                if p < end:
                    opt = np.int64(buf[p])
                p += 1
                p_rs = p
                p_lo = p + 3
                p_hi = p + 7
                p_in = p + 11  # START_IN, INCR_IN
                p_indx = p + 19
                p_after = p_indx + 2 * icnt
                has_indx = icnt > 0 and p_after <= end
                first = T_I[TI_COUNT, tid] == 0 and T_I[TI_FIRST_REC, tid] == rec
                if first:
                    if ipool.shape[0] - st[S_IPOOL] < icnt:
                        # roll back is unnecessary: the test exists; only its defaults wait for room
                        return i, NEED_ROOM
                    _set_defaults(
                        buf,
                        big,
                        tid,
                        opt,
                        p_rs,
                        p_lo,
                        p_hi,
                        p_after,
                        end,
                        False,
                        T_I,
                        T_F,
                        pool,
                        st,
                    )
                    if opt >= 0 and (opt & 2) == 0 and p_in + 8 <= end:
                        T_F[TF_START_IN, tid] = _f4(buf, p_in, big)
                        T_F[TF_INCR_IN, tid] = _f4(buf, p_in + 4, big)
                        T_I[TI_VALID, tid] |= (1 << TF_START_IN) | (1 << TF_INCR_IN)
                    if has_indx:
                        io = st[S_IPOOL]
                        for j in range(icnt):
                            ipool[io + j] = _u2(buf, p_indx + 2 * j, big)
                        st[S_IPOOL] = io + icnt
                        T_I[TI_INDX_OFF, tid] = io
                        T_I[TI_INDX_LEN, tid] = icnt
                nrow = max(icnt, rcnt, np.int64(1))
                r = st[S_NRES]
                lim_valid = np.int64(0)
                for k in range(nrow):
                    rr = r + k
                    valid = np.int64(0)
                    pv = p_rslt + 4 * k
                    if k < rcnt and pv + 4 <= end:
                        R_F[RF_VALUE, rr] = _f4(buf, pv, big)
                        valid = np.int64(1)
                    R_I[RI_STAT, rr] = -1
                    if k < icnt and p_stat + k // 2 < end:
                        b = np.int64(buf[p_stat + k // 2])
                        R_I[RI_STAT, rr] = (b >> 4) if (k & 1) else (b & 15)
                    R_I[RI_PIN, rr] = -1
                    if has_indx and k < icnt:
                        R_I[RI_PIN, rr] = _u2(buf, p_indx + 2 * k, big)
                    elif T_I[TI_INDX_LEN, tid] > k:
                        R_I[RI_PIN, rr] = ipool[T_I[TI_INDX_OFF, tid] + k]
                    if k == 0:
                        lim_valid = _limits(buf, big, tid, opt, p_lo, p_hi, end, T_I, T_F, R_F, rr)
                    else:
                        R_F[RF_LO, rr] = R_F[RF_LO, r]
                        R_F[RF_HI, rr] = R_F[RF_HI, r]
                    R_I[RI_VALID, rr] = valid | lim_valid
                st[S_NRES] = r + nrow
                nr = nrow
            else:  # FTR
                kind = KIND_FTR
                p = p0 + 38
                if p > end:
                    p = end
                    t_len = np.int64(-1)
                    t_off = p
                    a_off = p
                    a_len = np.int64(-1)
                else:
                    j = _u2(buf, p0 + 34, big)
                    k2 = _u2(buf, p0 + 36, big)
                    p = p + 2 * j + (j + 1) // 2 + 2 * k2 + (k2 + 1) // 2
                    if p + 2 <= end:
                        nbits = _u2(buf, p, big)
                        p = p + 2 + (nbits + 7) // 8
                    else:
                        p = end + 1
                    if p > end:
                        p = end
                    _o, _l, p = _cn(buf, p, end)  # VECT_NAM
                    _o, _l, p = _cn(buf, p, end)  # TIME_SET
                    _o, _l, p = _cn(buf, p, end)  # OP_CODE
                    t_off, t_len, p = _cn(buf, p, end)
                    a_off, a_len, p = _cn(buf, p, end)
                    if t_len == -2 or a_len == -2:
                        st[S_PARTIAL] += 1
                tid = _lookup(
                    kind, num, buf, t_off, t_len, rec, head, site, hs, T_I, h_full, h_num, pool, st, last_test
                )
                if tid < 0:
                    return i, NEED_ROOM
                if T_I[TI_COUNT, tid] == 0 and T_I[TI_FIRST_REC, tid] == rec and p0 + 8 <= end:
                    T_I[TI_OPT, tid] = np.int64(buf[p0 + 7])
                r = st[S_NRES]
                st[S_NRES] = r + 1
                R_I[RI_PIN, r] = -1
                R_I[RI_STAT, r] = -1
            # common columns
            r0 = st[S_NRES] - nr
            part = open_part[hs]
            for rr in range(np.uint64(r0), np.uint64(r0 + nr)):  # unsigned: no negative-index fix-ups
                R_L[RL_PART, rr] = part
                R_L[RL_REC, rr] = rec
                R_I[RI_TEST, rr] = tid
                R_I[RI_NUM, rr] = num
                R_I[RI_HEAD, rr] = head
                R_I[RI_SITE, rr] = site
                R_I[RI_TFLG, rr] = tflg
                R_I[RI_PFLG, rr] = pflg
                R_I[RI_KIND, rr] = kind
                R_I[RI_ALARM_OFF, rr] = a_off
                R_I[RI_ALARM_LEN, rr] = a_len if a_len >= 0 else -1
            if code != C_MPR:
                R_I[RI_VALID, r0] = valid
            T_I[TI_COUNT, tid] += nr
            st[S_RESULTS_TOTAL] += nr
        elif code == C_PIR:
            if end - p0 < 2:
                st[S_SHORT] += 1
                continue
            hs = np.int64(buf[p0]) * 256 + np.int64(buf[p0 + 1])
            if open_part[hs] >= 0:
                # the previous part on this head/site never got its PRR: emit it as unclosed
                st[S_UNCLOSED] += 1
                q = st[S_NPARTS]
                st[S_NPARTS] = q + 1
                P_I[PI_SEQ, q] = open_part[hs]
                P_I[PI_HEAD, q] = hs >> 8
                P_I[PI_SITE, q] = hs & 255
                P_I[PI_PIR_REC, q] = open_pir[hs]
                P_I[PI_PRR_REC, q] = -1
                P_I[PI_NFIELDS, q] = 2
            open_part[hs] = st[S_PARTS]
            open_pir[hs] = rec
            st[S_PARTS] += 1
        elif code == C_PRR:
            if end - p0 < 2:
                st[S_SHORT] += 1
                continue
            head = np.int64(buf[p0])
            site = np.int64(buf[p0 + 1])
            hs = head * 256 + site
            q = st[S_NPARTS]
            st[S_NPARTS] = q + 1
            if open_part[hs] >= 0:
                P_I[PI_SEQ, q] = open_part[hs]
                P_I[PI_PIR_REC, q] = open_pir[hs]
            else:
                st[S_ORPHAN_PRR] += 1
                P_I[PI_SEQ, q] = st[S_PARTS]
                st[S_PARTS] += 1
                P_I[PI_PIR_REC, q] = -1
            open_part[hs] = -1
            open_pir[hs] = -1
            P_I[PI_PRR_REC, q] = rec
            P_I[PI_HEAD, q] = head
            P_I[PI_SITE, q] = site
            nf = np.int64(2)
            p = p0 + 2
            if p + 1 <= end:
                P_I[PI_FLG, q] = buf[p]
                nf = 3
            if p + 3 <= end:
                P_I[PI_NUM_TEST, q] = _u2(buf, p + 1, big)
                nf = 4
            if p + 5 <= end:
                P_I[PI_HBIN, q] = _u2(buf, p + 3, big)
                nf = 5
            if p + 7 <= end:
                P_I[PI_SBIN, q] = _u2(buf, p + 5, big)
                nf = 6
            if p + 9 <= end:
                P_I[PI_X, q] = _i2(buf, p + 7, big)
                nf = 7
            if p + 11 <= end:
                P_I[PI_Y, q] = _i2(buf, p + 9, big)
                nf = 8
            if p + 15 <= end:
                P_I[PI_TEST_T, q] = _u4(buf, p + 11, big)
                nf = 9
            p = p + 15
            if p <= end:  # the three strings (an omitted one comes back with length -1)
                o, ln, p = _cn(buf, p, end)
                P_I[PI_ID_OFF, q] = o
                P_I[PI_ID_LEN, q] = ln
                if ln >= 0:
                    nf = 10
                elif ln == -2:
                    st[S_PARTIAL] += 1
                o, ln, p = _cn(buf, p, end)
                P_I[PI_TXT_OFF, q] = o
                P_I[PI_TXT_LEN, q] = ln
                if ln >= 0:
                    nf = 11
                elif ln == -2:
                    st[S_PARTIAL] += 1
                o, ln, p = _cn(buf, p, end)  # Bn has the same layout as Cn
                P_I[PI_FIX_OFF, q] = o
                P_I[PI_FIX_LEN, q] = ln
                if ln >= 0:
                    nf = 12
                elif ln == -2:
                    st[S_PARTIAL] += 1
            P_I[PI_NFIELDS, q] = nf
    return nrec, OK


def _set_defaults(buf, big, tid, opt, p_rs, p_lo, p_hi, p_after, end, is_ptr, T_I, T_F, pool, st):
    """Record the first PTR/MPR of a test as the test's defaults (omitted fields stay missing)."""
    if opt < 0:
        return
    T_I[TI_OPT, tid] = opt
    if p_rs + 1 <= end and (opt & 1) == 0:
        T_I[TI_RES_SCAL, tid] = _i1(buf, p_rs)
    if p_rs + 2 <= end and (opt & 16) == 0:
        T_I[TI_LLM_SCAL, tid] = _i1(buf, p_rs + 1)
    if p_rs + 3 <= end and (opt & 32) == 0:
        T_I[TI_HLM_SCAL, tid] = _i1(buf, p_rs + 2)
    if p_lo + 4 <= end and (opt & 16) == 0 and (opt & 64) == 0:
        T_F[TF_LO, tid] = _f4(buf, p_lo, big)
        T_I[TI_VALID, tid] |= 1 << TF_LO
    if p_hi + 4 <= end and (opt & 32) == 0 and (opt & 128) == 0:
        T_F[TF_HI, tid] = _f4(buf, p_hi, big)
        T_I[TI_VALID, tid] |= 1 << TF_HI
    p = p_after
    ncol = 4 if is_ptr else 5
    for idx in range(ncol):
        c = idx if is_ptr else MPR_STR_ORDER[idx]
        o, ln, p = _cn(buf, p, end)
        if ln > 0:
            _store_str(buf, o, ln, tid, c, T_I, pool, st)
        elif ln == -2:
            st[S_PARTIAL] += 1
    if p + 4 <= end and (opt & 4) == 0:
        T_F[TF_LO_SPEC, tid] = _f4(buf, p, big)
        T_I[TI_VALID, tid] |= 1 << TF_LO_SPEC
    if p + 8 <= end and (opt & 8) == 0:
        T_F[TF_HI_SPEC, tid] = _f4(buf, p + 4, big)
        T_I[TI_VALID, tid] |= 1 << TF_HI_SPEC


def _limits(buf, big, tid, opt, p_lo, p_hi, end, T_I, T_F, R_F, r):
    """Effective limits of one result; returns validity bits (2: low limit, 4: high limit).

    OPT_FLAG bit 6/7: no low/high limit; bit 4/5: the record's limit is invalid, use the test default;
    a limit field omitted by REC_LEN, or an omitted OPT_FLAG, also means the default.
    """
    valid = np.int64(0)
    if opt >= 0 and (opt & 64) != 0:
        pass
    elif opt >= 0 and (opt & 16) == 0 and p_lo + 4 <= end:
        R_F[RF_LO, r] = _f4(buf, p_lo, big)
        valid |= 2
    elif (T_I[TI_VALID, tid] >> TF_LO) & 1:
        R_F[RF_LO, r] = T_F[TF_LO, tid]
        valid |= 2
    if opt >= 0 and (opt & 128) != 0:
        pass
    elif opt >= 0 and (opt & 32) == 0 and p_hi + 4 <= end:
        R_F[RF_HI, r] = _f4(buf, p_hi, big)
        valid |= 4
    elif (T_I[TI_VALID, tid] >> TF_HI) & 1:
        R_F[RF_HI, r] = T_F[TF_HI, tid]
        valid |= 4
    return valid


def _gather_impl(src, offs, lens, n):
    """Gather strings ``src[offs[i]:offs[i]+lens[i]]`` (lens < 0: null) as Latin-1 turned into UTF-8.

    STDF strings are bytes; Latin-1 maps every byte to one code point, so any file decodes, exactly
    and reversibly, into valid UTF-8 (ASCII text is unchanged).
    """
    total = 0
    high = 0  # bytes >= 128 (two UTF-8 bytes each): counted branch-free, the loop vectorises
    for i in range(n):
        ln = lens[i]
        if ln > 0:
            o = offs[i]
            total += ln
            for j in range(ln):
                high += np.int64(src[o + j] >> 7)
    total += high
    out_off = np.empty(n + 1, np.int32)
    data = np.empty(total, np.uint8)
    valid = np.empty(n, np.bool_)
    w = 0
    if high == 0:  # ASCII only (nearly always): plain copies
        for i in range(n):
            out_off[i] = w
            ln = lens[i]
            valid[i] = ln >= 0
            if ln > 0:
                o = offs[i]
                if ln >= 32:
                    data[w : w + ln] = src[o : o + ln]
                else:  # a slice copy costs 10 ns in views: short strings go byte by byte
                    for j in range(ln):
                        data[w + j] = src[o + j]
                w += ln
        out_off[n] = w
        return out_off, data, valid
    for i in range(n):
        out_off[i] = w
        ln = lens[i]
        valid[i] = ln >= 0
        if ln > 0:
            o = offs[i]
            for j in range(ln):
                b = src[o + j]
                if b < 128:
                    data[w] = b
                    w += 1
                else:
                    data[w] = 0xC0 | (b >> 6)
                    data[w + 1] = 0x80 | (b & 0x3F)
                    w += 2
    out_off[n] = w
    return out_off, data, valid


_jit: dict = {}


def kernels():
    """Compile (once, cached on disk) and return (decode, gather)."""
    if not _jit:
        import numba

        g = globals()
        opts = {"cache": True, "nogil": True}
        # Everything is inlined into the one kernel: a call that passes arrays costs reference-count
        # updates per array, which at one call per record would dominate the decode time.
        inlined = ("_u2", "_u4", "_i2", "_i4", "_i1", "_hash", "_cn", "_f4", "_store_str", "_find_or_add",
                   "_lookup", "_set_defaults", "_limits")  # fmt: skip
        for name in inlined:
            g[name] = numba.njit(inline="always", **opts)(g[name])
        # Without the runtime's reference counting: the kernel allocates nothing, and with counting on,
        # every array handed to an inlined helper costs an atomic increment and decrement per record
        # (hundreds of them per record, most of the kernel's time before this was turned off).
        _jit["decode"] = numba.njit(_nrt=False, **opts)(_decode_impl)
        _jit["gather"] = numba.njit(**opts)(_gather_impl)
    return _jit["decode"], _jit["gather"]


class HotState:
    """Arrays that carry part and test state across chunks of one file."""

    def __init__(self, tests: int = 4096, pool: int = 1 << 18, ipool: int = 1 << 14) -> None:
        self.st = np.zeros(N_STATE, np.int64)
        self.open_part = np.full(65536, -1, np.int64)
        self.open_pir = np.full(65536, -1, np.int64)
        self.last_test = np.full(65536, -1, np.int64)
        self.T_I = np.zeros((N_TI, tests), np.int64)
        self.T_F = np.zeros((N_TF, tests), np.float32)
        self.h_full = np.zeros(4 * tests, np.int64)
        self.h_num = np.zeros(4 * tests, np.int64)
        self.pool = np.zeros(pool, np.uint8)
        self.ipool = np.zeros(ipool, np.uint16)

    def reset(self) -> None:
        """Ready for another file, keeping the memory (and any growth) of the last one.

        Everything a test definition holds is written when the test is created, so only the per-file
        counters, the head/site maps, the hash indexes and the used part of the float table are
        cleared; the name pools are only ever read where written.
        """
        n = int(self.st[S_TESTS])
        self.st[:] = 0
        self.open_part.fill(-1)
        self.open_pir.fill(-1)
        self.last_test.fill(-1)
        self.T_F[:, :n] = 0
        self.h_full.fill(0)
        self.h_num.fill(0)

    def grow(self) -> None:
        """Double every table; rebuild both hash indexes for the new size."""
        n = int(self.st[S_TESTS])
        cap = self.T_I.shape[1] * 2
        t_i = np.zeros((N_TI, cap), np.int64)
        t_i[:, :n] = self.T_I[:, :n]
        t_f = np.zeros((N_TF, cap), np.float32)
        t_f[:, :n] = self.T_F[:, :n]
        self.T_I, self.T_F = t_i, t_f
        self.pool = np.concatenate([self.pool, np.zeros_like(self.pool)])
        self.ipool = np.concatenate([self.ipool, np.zeros(max(self.ipool.shape[0], 1 << 16), np.uint16)])
        self._rehash(4 * cap)

    def _rehash(self, size: int) -> None:
        n = int(self.st[S_TESTS])
        self.h_full = np.zeros(size, np.int64)
        self.h_num = np.zeros(size, np.int64)
        mask = size - 1
        for tid in range(n):
            kind = int(self.T_I[TI_KIND, tid])
            num = int(self.T_I[TI_NUM, tid])
            ln = int(self.T_I[TI_NAME_LEN, tid])
            if ln >= 1:
                off = int(self.T_I[TI_NAME_OFF, tid])
                slot = int(_py_hash(kind, num, bytes(self.pool[off : off + ln]))) & mask
                while self.h_full[slot]:
                    slot = (slot + 1) & mask
                self.h_full[slot] = tid + 1
            slot = int(_py_hash(kind, num, None)) & mask
            found = False
            while self.h_num[slot]:
                t2 = int(self.h_num[slot]) - 1
                if int(self.T_I[TI_KIND, t2]) == kind and int(self.T_I[TI_NUM, t2]) == num:
                    found = True
                    break
                slot = (slot + 1) & mask
            if not found:
                self.h_num[slot] = tid + 1


def _py_hash(kind: int, num: int, name: bytes | None) -> int:
    """The kernel's FNV-1a hash, in Python (used when the tables are rebuilt after growing)."""
    m = (1 << 64) - 1
    prime = 1099511628211
    h = 14695981039346656037
    h = ((h ^ (kind + 1)) * prime) & m
    for s in range(4):
        h = ((h ^ ((num >> (8 * s)) & 255)) * prime) & m
    ln = -1 if name is None else len(name)
    h = ((h ^ ((ln + 7) & m)) * prime) & m
    for b in name or b"":
        h = ((h ^ b) * prime) & m
    return h
