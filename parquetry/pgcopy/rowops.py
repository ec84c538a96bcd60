"""Byte helpers of the generated row kernels (:mod:`parquetry.pgcopy.rowspec`), as ordinary compiled
functions.

``rowkernel``'s helpers are inlined by numba itself (``inline="always"``), right for its one column
loop; in a kernel unrolled for twenty columns numba's own passes over the inlined copies doubled the
compile time (52 s against 27 s, one measurement each). Called as ordinary functions, they are inlined
by LLVM instead, into the same machine code.
"""

from __future__ import annotations

import numba as nb

from parquetry.pgcopy import rowkernel as R

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def u8(buf, p):  # type: ignore[no-untyped-def]
    return R._u8(buf, p)


@_jit
def be16(buf, p):  # type: ignore[no-untyped-def]
    return R._be16(buf, p)


@_jit
def be32(buf, p):  # type: ignore[no-untyped-def]
    return R._be32(buf, p)


@_jit
def be64(buf, p):  # type: ignore[no-untyped-def]
    return R._be64(buf, p)


@_jit
def le64(buf, p):  # type: ignore[no-untyped-def]
    return R._le64(buf, p)


@_jit
def put64(out, p, v):  # type: ignore[no-untyped-def]
    R._put64(out, p, v)


@_jit
def decimal_fast(buf, o, ln, precision, scale):  # type: ignore[no-untyped-def]
    return R._decimal_fast(buf, o, ln, precision, scale)
