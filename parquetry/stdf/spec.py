"""The STDF V4 and V4-2007 record type table.

One entry per record type: its (REC_TYP, REC_SUB) code and its fields in file order. The table drives
the generic decoder used for the rarer records, the record counts, and the documentation; the hot
records (PIR, PRR, PTR, MPR, FTR) have hand-written numba decoders that follow the same layouts.

Field types follow the specification's codes: ``U1 U2 U4 U8 I1 I2 I4 R4 R8 C1 B1`` fixed size,
``Cn`` (1-byte length), ``Sn`` (2-byte length), ``Bn`` (1-byte byte count), ``Dn`` (2-byte bit
count), ``N1`` (nibble), ``Vn`` (GDR typed generic data). An array field names the earlier field that
holds its element count (``kxTYPE``); ``Uf``/``Cf`` arrays also name the field that gives the element
width in bytes (V4-2007 STR).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    count: str | None = None  # name of the earlier field holding the element count (kxTYPE)
    width: str | None = None  # name of the earlier field holding the element width (kxUf, kxCf)


@dataclass(frozen=True, slots=True)
class RecordType:
    name: str
    typ: int
    sub: int
    fields: tuple[Field, ...]
    v2007: bool = False  # introduced by the V4-2007 revision


def _f(spec: str) -> Field:
    """``"NAME:TYPE"`` or ``"NAME:kTYPE:COUNT"`` or ``"NAME:kTYPE:COUNT:WIDTH"``."""
    parts = spec.split(":")
    if len(parts) == 2:
        return Field(parts[0], parts[1])
    if len(parts) == 3:
        return Field(parts[0], parts[1], parts[2])
    return Field(parts[0], parts[1], parts[2], parts[3])


def _rec(name: str, typ: int, sub: int, fields: str, v2007: bool = False) -> RecordType:
    return RecordType(name, typ, sub, tuple(_f(s) for s in fields.split()), v2007)


_PTR_MPR_TAIL = "OPT_FLAG:B1 RES_SCAL:I1 LLM_SCAL:I1 HLM_SCAL:I1 LO_LIMIT:R4 HI_LIMIT:R4"

RECORDS: tuple[RecordType, ...] = (
    _rec("FAR", 0, 10, "CPU_TYPE:U1 STDF_VER:U1"),
    _rec("ATR", 0, 20, "MOD_TIM:U4 CMD_LINE:Cn"),
    _rec("VUR", 0, 30, "UPD_CNT:U1 UPD_NAM:Cn:UPD_CNT", v2007=True),
    _rec(
        "MIR",
        1,
        10,
        "SETUP_T:U4 START_T:U4 STAT_NUM:U1 MODE_COD:C1 RTST_COD:C1 PROT_COD:C1 BURN_TIM:U2 CMOD_COD:C1 "
        "LOT_ID:Cn PART_TYP:Cn NODE_NAM:Cn TSTR_TYP:Cn JOB_NAM:Cn JOB_REV:Cn SBLOT_ID:Cn OPER_NAM:Cn "
        "EXEC_TYP:Cn EXEC_VER:Cn TEST_COD:Cn TST_TEMP:Cn USER_TXT:Cn AUX_FILE:Cn PKG_TYP:Cn FAMLY_ID:Cn "
        "DATE_COD:Cn FACIL_ID:Cn FLOOR_ID:Cn PROC_ID:Cn OPER_FRQ:Cn SPEC_NAM:Cn SPEC_VER:Cn FLOW_ID:Cn "
        "SETUP_ID:Cn DSGN_REV:Cn ENG_ID:Cn ROM_COD:Cn SERL_NUM:Cn SUPR_NAM:Cn",
    ),
    _rec("MRR", 1, 20, "FINISH_T:U4 DISP_COD:C1 USR_DESC:Cn EXC_DESC:Cn"),
    _rec("PCR", 1, 30, "HEAD_NUM:U1 SITE_NUM:U1 PART_CNT:U4 RTST_CNT:U4 ABRT_CNT:U4 GOOD_CNT:U4 FUNC_CNT:U4"),
    _rec("HBR", 1, 40, "HEAD_NUM:U1 SITE_NUM:U1 HBIN_NUM:U2 HBIN_CNT:U4 HBIN_PF:C1 HBIN_NAM:Cn"),
    _rec("SBR", 1, 50, "HEAD_NUM:U1 SITE_NUM:U1 SBIN_NUM:U2 SBIN_CNT:U4 SBIN_PF:C1 SBIN_NAM:Cn"),
    _rec("PMR", 1, 60, "PMR_INDX:U2 CHAN_TYP:U2 CHAN_NAM:Cn PHY_NAM:Cn LOG_NAM:Cn HEAD_NUM:U1 SITE_NUM:U1"),
    _rec("PGR", 1, 62, "GRP_INDX:U2 GRP_NAM:Cn INDX_CNT:U2 PMR_INDX:U2:INDX_CNT"),
    _rec(
        "PLR",
        1,
        63,
        "GRP_CNT:U2 GRP_INDX:U2:GRP_CNT GRP_MODE:U2:GRP_CNT GRP_RADX:U1:GRP_CNT PGM_CHAR:Cn:GRP_CNT "
        "RTN_CHAR:Cn:GRP_CNT PGM_CHAL:Cn:GRP_CNT RTN_CHAL:Cn:GRP_CNT",
    ),
    _rec("RDR", 1, 70, "NUM_BINS:U2 RTST_BIN:U2:NUM_BINS"),
    _rec(
        "SDR",
        1,
        80,
        "HEAD_NUM:U1 SITE_GRP:U1 SITE_CNT:U1 SITE_NUM:U1:SITE_CNT HAND_TYP:Cn HAND_ID:Cn CARD_TYP:Cn "
        "CARD_ID:Cn LOAD_TYP:Cn LOAD_ID:Cn DIB_TYP:Cn DIB_ID:Cn CABL_TYP:Cn CABL_ID:Cn CONT_TYP:Cn "
        "CONT_ID:Cn LASR_TYP:Cn LASR_ID:Cn EXTR_TYP:Cn EXTR_ID:Cn",
    ),
    _rec(
        "PSR",
        1,
        90,
        "CONT_FLG:B1 PSR_INDX:U2 PSR_NAM:Cn OPT_FLG:B1 TOTP_CNT:U2 LOCP_CNT:U2 PAT_BGN:U8:LOCP_CNT "
        "PAT_END:U8:LOCP_CNT PAT_FILE:Cn:LOCP_CNT PAT_LBL:Cn:LOCP_CNT FILE_UID:Cn:LOCP_CNT "
        "ATPG_DSC:Cn:LOCP_CNT SRC_ID:Cn:LOCP_CNT",
        v2007=True,
    ),
    _rec(
        "NMR",
        1,
        91,
        "CONT_FLG:B1 TOTM_CNT:U2 LOCM_CNT:U2 PMR_INDX:U2:LOCM_CNT ATPG_NAM:Cn:LOCM_CNT",
        v2007=True,
    ),
    _rec("CNR", 1, 92, "CHN_NUM:U2 BIT_POS:U4 CELL_NAM:Sn", v2007=True),
    _rec("SSR", 1, 93, "SSR_NAM:Cn CHN_CNT:U2 CHN_LIST:U2:CHN_CNT", v2007=True),
    _rec(
        "CDR",
        1,
        94,
        "CONT_FLG:B1 CDR_INDX:U2 CHN_NAM:Cn CHN_LEN:U4 SIN_PIN:U2 SOUT_PIN:U2 MSTR_CNT:U1 "
        "M_CLKS:U2:MSTR_CNT SLAV_CNT:U1 S_CLKS:U2:SLAV_CNT INV_VAL:U1 LST_CNT:U2 CELL_LST:Sn:LST_CNT",
        v2007=True,
    ),
    _rec("WIR", 2, 10, "HEAD_NUM:U1 SITE_GRP:U1 START_T:U4 WAFER_ID:Cn"),
    _rec(
        "WRR",
        2,
        20,
        "HEAD_NUM:U1 SITE_GRP:U1 FINISH_T:U4 PART_CNT:U4 RTST_CNT:U4 ABRT_CNT:U4 GOOD_CNT:U4 FUNC_CNT:U4 "
        "WAFER_ID:Cn FABWF_ID:Cn FRAME_ID:Cn MASK_ID:Cn USR_DESC:Cn EXC_DESC:Cn",
    ),
    _rec(
        "WCR",
        2,
        30,
        "WAFR_SIZ:R4 DIE_HT:R4 DIE_WID:R4 WF_UNITS:U1 WF_FLAT:C1 CENTER_X:I2 CENTER_Y:I2 POS_X:C1 POS_Y:C1",
    ),
    _rec("PIR", 5, 10, "HEAD_NUM:U1 SITE_NUM:U1"),
    _rec(
        "PRR",
        5,
        20,
        "HEAD_NUM:U1 SITE_NUM:U1 PART_FLG:B1 NUM_TEST:U2 HARD_BIN:U2 SOFT_BIN:U2 X_COORD:I2 Y_COORD:I2 "
        "TEST_T:U4 PART_ID:Cn PART_TXT:Cn PART_FIX:Bn",
    ),
    _rec(
        "TSR",
        10,
        30,
        "HEAD_NUM:U1 SITE_NUM:U1 TEST_TYP:C1 TEST_NUM:U4 EXEC_CNT:U4 FAIL_CNT:U4 ALRM_CNT:U4 TEST_NAM:Cn "
        "SEQ_NAME:Cn TEST_LBL:Cn OPT_FLAG:B1 TEST_TIM:R4 TEST_MIN:R4 TEST_MAX:R4 TST_SUMS:R4 TST_SQRS:R4",
    ),
    _rec(
        "PTR",
        15,
        10,
        "TEST_NUM:U4 HEAD_NUM:U1 SITE_NUM:U1 TEST_FLG:B1 PARM_FLG:B1 RESULT:R4 TEST_TXT:Cn ALARM_ID:Cn "
        + _PTR_MPR_TAIL
        + " UNITS:Cn C_RESFMT:Cn C_LLMFMT:Cn C_HLMFMT:Cn LO_SPEC:R4 HI_SPEC:R4",
    ),
    _rec(
        "MPR",
        15,
        15,
        "TEST_NUM:U4 HEAD_NUM:U1 SITE_NUM:U1 TEST_FLG:B1 PARM_FLG:B1 RTN_ICNT:U2 RSLT_CNT:U2 "
        "RTN_STAT:N1:RTN_ICNT RTN_RSLT:R4:RSLT_CNT TEST_TXT:Cn ALARM_ID:Cn "
        + _PTR_MPR_TAIL
        + " START_IN:R4 INCR_IN:R4 RTN_INDX:U2:RTN_ICNT UNITS:Cn UNITS_IN:Cn C_RESFMT:Cn C_LLMFMT:Cn "
        "C_HLMFMT:Cn LO_SPEC:R4 HI_SPEC:R4",
    ),
    _rec(
        "FTR",
        15,
        20,
        "TEST_NUM:U4 HEAD_NUM:U1 SITE_NUM:U1 TEST_FLG:B1 OPT_FLAG:B1 CYCL_CNT:U4 REL_VADR:U4 REPT_CNT:U4 "
        "NUM_FAIL:U4 XFAIL_AD:I4 YFAIL_AD:I4 VECT_OFF:I2 RTN_ICNT:U2 PGM_ICNT:U2 RTN_INDX:U2:RTN_ICNT "
        "RTN_STAT:N1:RTN_ICNT PGM_INDX:U2:PGM_ICNT PGM_STAT:N1:PGM_ICNT FAIL_PIN:Dn VECT_NAM:Cn TIME_SET:Cn "
        "OP_CODE:Cn TEST_TXT:Cn ALARM_ID:Cn PROG_TXT:Cn RSLT_TXT:Cn PATG_NUM:U1 SPIN_MAP:Dn",
    ),
    _rec(
        "STR",
        15,
        30,
        "CONT_FLG:B1 TEST_NUM:U4 HEAD_NUM:U1 SITE_NUM:U1 PSR_REF:U2 TEST_FLG:B1 LOG_TYP:Cn TEST_TXT:Cn "
        "ALARM_ID:Cn PROG_TXT:Cn RSLT_TXT:Cn Z_VAL:U1 FMU_FLG:B1 MASK_MAP:Dn FAL_MAP:Dn CYC_CNT_T:U8 "
        "TOTF_CNT:U4 TOTL_CNT:U4 CYC_BASE:U8 BIT_BASE:U4 COND_CNT:U2 LIM_CNT:U2 CYC_SIZE:U1 PMR_SIZE:U1 "
        "CHN_SIZE:U1 PAT_SIZE:U1 BIT_SIZE:U1 U1_SIZE:U1 U2_SIZE:U1 U3_SIZE:U1 UTX_SIZE:U1 CAP_BGN:U2 "
        "LIM_INDX:U2:LIM_CNT LIM_SPEC:U4:LIM_CNT COND_LST:Cn:COND_CNT CYC_CNT:U2 "
        "CYC_OFST:Uf:CYC_CNT:CYC_SIZE PMR_CNT:U2 PMR_INDX:Uf:PMR_CNT:PMR_SIZE CHN_CNT:U2 "
        "CHN_NUM:Uf:CHN_CNT:CHN_SIZE EXP_CNT:U2 EXP_DATA:U1:EXP_CNT CAP_CNT:U2 CAP_DATA:U1:CAP_CNT "
        "NEW_CNT:U2 NEW_DATA:U1:NEW_CNT PAT_CNT:U2 PAT_NUM:Uf:PAT_CNT:PAT_SIZE BPOS_CNT:U2 "
        "BIT_POS:Uf:BPOS_CNT:BIT_SIZE USR1_CNT:U2 USR1:Uf:USR1_CNT:U1_SIZE USR2_CNT:U2 "
        "USR2:Uf:USR2_CNT:U2_SIZE USR3_CNT:U2 USR3:Uf:USR3_CNT:U3_SIZE TXT_CNT:U2 "
        "USER_TXT:Cf:TXT_CNT:UTX_SIZE",
        v2007=True,
    ),
    _rec("BPS", 20, 10, "SEQ_NAME:Cn"),
    _rec("EPS", 20, 20, ""),
    _rec("GDR", 50, 10, "FLD_CNT:U2 GEN_DATA:Vn:FLD_CNT"),
    _rec("DTR", 50, 30, "TEXT_DAT:Cn"),
)

BY_NAME: dict[str, RecordType] = {r.name: r for r in RECORDS}
BY_CODE: dict[tuple[int, int], RecordType] = {(r.typ, r.sub): r for r in RECORDS}

# The numeric code used in framed arrays: REC_TYP * 256 + REC_SUB.
CODE_OF: dict[str, int] = {r.name: r.typ * 256 + r.sub for r in RECORDS}
NAME_OF_CODE: dict[int, str] = {v: k for k, v in CODE_OF.items()}


def record_name(typ: int, sub: int) -> str:
    """The record's three-letter name, or ``UNKNOWN_<typ>_<sub>`` for codes outside the specification."""
    rec = BY_CODE.get((typ, sub))
    return rec.name if rec is not None else f"UNKNOWN_{typ}_{sub}"
