"""Readers: run ``COPY ... TO STDOUT (FORMAT binary)`` on a worker connection into chunk files.

Two readers exist because of where client CPU goes. psycopg's COPY reading hands every row to
Python (several CPU-seconds per GB); on a small machine that is the wall time.

* ``SocketCopyReader`` (``"socket"``, the default): psycopg connects and authenticates (any auth
  method libpq supports), then this reader takes over the socket. It sends simple Query messages
  itself, receives the backend's messages in multi-megabyte ``recv_into`` blocks and strips the
  CopyData framing with a compiled routine (:mod:`parquetry.extract.framing`) straight into the
  chunk file's shared memory map (:mod:`parquetry.extract.mapped`). It only works on an unencrypted
  connection, and the connection is never handed back to libpq: it is closed after use.
* ``PsycopgCopyReader`` (``"psycopg"``): psycopg's ``Copy.read()``, one row at a time. Slower, but it
  works on any connection libpq can make, in particular SSL/GSS-encrypted ones, which is why
  ``"auto"`` picks it there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from typing import Protocol

import numpy as np
import psycopg

from parquetry.extract.errors import ExtractCancelled, ProtocolError, ServerError
from parquetry.extract.framing import CUT, NEED_MORE, OTHER, OUT_FULL, strip_copy_data
from parquetry.extract.staging import COPY_SIGNATURE, COPY_TRAILER, ChunkWriter

READERS = ("auto", "socket", "psycopg")
_BLOCK = 1 << 20  # receive buffer; grows for a message larger than it
# The socket reader asks the kernel to wake it only once this much has arrived, or after _LOW_WAIT_S.
_LOW_WATER = 256 << 10
_LOW_WAIT_S = 0.002


class CopyReader(Protocol):
    name: str

    def begin(self, prelude: str, source: str) -> None:
        """Run the transaction prelude (BEGIN ...; SET TRANSACTION SNAPSHOT ...)."""

    def copy(self, statement: str, writer: ChunkWriter) -> int:
        """Run one COPY TO STDOUT (FORMAT binary), writing rows through ``writer``; returns rows."""

    def close(self) -> None: ...


def socket_reader_possible(conn: psycopg.Connection) -> bool:
    """True when the connection's bytes on the socket are plain protocol (no SSL or GSS encryption)."""
    pgconn = conn.pgconn
    return not pgconn.ssl_in_use and not pgconn.used_gssapi


def open_reader(conn: psycopg.Connection, kind: str, stop: threading.Event) -> CopyReader:
    """The reader for ``kind`` (``auto``, ``socket`` or ``psycopg``) on a fresh autocommit connection."""
    if kind not in READERS:
        raise ValueError(f"unknown reader {kind!r}; choose one of {READERS}")
    if kind == "psycopg" or (kind == "auto" and not socket_reader_possible(conn)):
        return PsycopgCopyReader(conn, stop)
    if not socket_reader_possible(conn):
        raise ProtocolError(
            "the socket reader needs an unencrypted connection; use reader='auto' or 'psycopg'"
        )
    return SocketCopyReader(conn, stop)


class _HeaderState:
    """Checks and strips the 19+ byte binary COPY header at the start of the first CopyData message."""

    @staticmethod
    def strip(payload: memoryview, source: str) -> memoryview:
        if len(payload) < 19 or bytes(payload[:11]) != COPY_SIGNATURE:
            raise ProtocolError(f"{source}: the COPY stream does not start with the binary signature")
        flags, ext = struct.unpack_from("!iI", payload, 11)
        if flags & 0x10000:
            raise ProtocolError(f"{source}: binary COPY with OIDs is not supported")
        start = 19 + ext
        if len(payload) < start:
            raise ProtocolError(f"{source}: truncated binary COPY header extension")
        return payload[start:]


def _set_low_water(sock: socket.socket, nbytes: int) -> int:
    """Ask the kernel to report the socket readable only once ``nbytes`` are waiting (SO_RCVLOWAT).

    The server sends the COPY stream in pieces of a few tens of kilobytes: woken for each, the reader
    spends more CPU on wake-ups, system calls and its Python loop than on the bytes (measured: about
    3,000 wake-ups for 78 MB). Returns the mark set, or 0 where the platform has no such option.
    """
    option = getattr(socket, "SO_RCVLOWAT", None)
    if option is None:
        return 0
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, nbytes)
    except OSError:
        return 0
    return nbytes


def _error_fields(body: memoryview, encoding: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    data = bytes(body)
    i = 0
    while i < len(data) and data[i] != 0:
        code = chr(data[i])
        j = data.index(b"\x00", i + 1)
        fields[code] = data[i + 1 : j].decode(encoding, "replace")
        i = j + 1
    return fields


def _server_error(fields: dict[str, str], source: str) -> ServerError:
    message = fields.get("M", "unknown error")
    detail = f" ({fields['D']})" if fields.get("D") else ""
    hint = f" hint: {fields['H']}" if fields.get("H") else ""
    code = fields.get("C")
    return ServerError(f"{source}: PostgreSQL error {code}: {message}{detail}{hint}", code, fields)


class SocketCopyReader:
    """Speaks the protocol on the connection's socket itself; see the module docstring."""

    name = "socket"

    def __init__(self, conn: psycopg.Connection, stop: threading.Event, block_bytes: int = _BLOCK):
        self.conn = conn
        self.stop = stop
        self.encoding = conn.info.encoding or "utf-8"
        self.sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        self.low_water = _set_low_water(self.sock, _LOW_WATER)
        # wake up to notice a stop request (and, with a low-water mark, to take a short tail)
        self.sock.settimeout(_LOW_WAIT_S if self.low_water else 0.5)
        self.buf = np.empty(block_bytes, dtype=np.uint8)
        self.pos = 0
        self.end = 0
        self.source = "?"

    # -- plumbing -------------------------------------------------------------------------------

    def _send_query(self, text: str) -> None:
        body = text.encode(self.encoding) + b"\x00"
        message = b"Q" + struct.pack("!I", len(body) + 4) + body
        view = memoryview(message)
        while view:
            if self.stop.is_set():
                raise ExtractCancelled("extraction stopped")
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                continue
            view = view[sent:]

    def _fill(self) -> None:
        """Receive more bytes after ``end``; compacts or grows the buffer as needed."""
        if self.pos > 0 and (self.end == self.buf.shape[0] or self.pos > self.buf.shape[0] // 2):
            pending = self.end - self.pos
            self.buf[:pending] = self.buf[self.pos : self.end]
            self.pos, self.end = 0, pending
        if self.end == self.buf.shape[0]:
            self._grow(self.buf.shape[0] * 2)
        view = memoryview(self.buf)[self.end :]
        while True:
            if self.stop.is_set():
                raise ExtractCancelled("extraction stopped")
            try:
                n = self.sock.recv_into(view)
            except TimeoutError:
                if not self.low_water:
                    continue
                # Less than the low-water mark came within the wait (the end of a COPY, a slow
                # server): take what there is without waiting.
                try:
                    n = os.readv(self.sock.fileno(), [view])
                except BlockingIOError:
                    continue
            if n == 0:
                raise ProtocolError(f"{self.source}: the server closed the connection during COPY")
            self.end += n
            return

    def _grow(self, size: int) -> None:
        buf = np.empty(size, dtype=np.uint8)
        buf[: self.end - self.pos] = self.buf[self.pos : self.end]
        self.end -= self.pos
        self.pos = 0
        self.buf = buf

    def _message(self) -> tuple[str, memoryview]:
        """The next complete message (type, body) at ``pos``; advances past it."""
        while self.end - self.pos < 5:
            self._fill()
        kind = chr(self.buf[self.pos])
        (length,) = struct.unpack_from("!I", self.buf, self.pos + 1)
        if length < 4:
            raise ProtocolError(f"{self.source}: protocol message {kind!r} with length {length}")
        total = length + 1
        if total > self.buf.shape[0]:
            self._grow(max(total, self.buf.shape[0] * 2))
        while self.end - self.pos < total:
            self._fill()
        body = memoryview(self.buf)[self.pos + 5 : self.pos + total]
        self.pos += total
        return kind, body

    # -- statements -----------------------------------------------------------------------------

    def begin(self, prelude: str, source: str) -> None:
        self.source = source
        self._send_query(prelude)
        self._until_ready(None)

    def copy(self, statement: str, writer: ChunkWriter) -> int:
        self.source = writer.source
        self._send_query(statement)
        try:
            return self._until_ready(writer)
        except BaseException:
            writer.abort()
            raise

    def _until_ready(self, writer: ChunkWriter | None) -> int:
        """Process messages until ReadyForQuery; returns the COPY's row count (0 for other statements)."""
        error: ServerError | None = None
        in_copy = False
        header_pending = False
        rows = 0
        copied = 0
        while True:
            if in_copy and not header_pending and writer is not None:
                copied += self._copy_rows(writer)
            kind, body = self._message()
            if kind == "d":
                if not in_copy or writer is None:
                    raise ProtocolError(f"{self.source}: CopyData outside COPY")
                if header_pending:
                    body = _HeaderState.strip(body, self.source)
                    header_pending = False
                if len(body) == 2 and bytes(body) == COPY_TRAILER:
                    continue
                if len(body) > writer.room and writer.chunk_rows:
                    writer.cut()
                writer.write_rows(body, 1)
                copied += 1
            elif kind == "H":
                if body[0] != 1:
                    raise ProtocolError(f"{self.source}: expected a binary COPY, the server sent text")
                in_copy = True
                header_pending = True
            elif kind == "c":
                in_copy = False
            elif kind == "C":
                tag = bytes(body[:-1]).decode("ascii", "replace")
                if tag.startswith("COPY "):
                    rows = int(tag.split()[-1])
            elif kind == "E":
                error = _server_error(_error_fields(body, self.encoding), self.source)
                in_copy = False
            elif kind == "Z":
                if error is not None:
                    if writer is not None:
                        writer.abort()
                    raise error
                if writer is not None:
                    writer.cut()
                    if copied != rows:
                        raise ProtocolError(
                            f"{self.source}: the server reported {rows} rows, {copied} were read"
                        )
                return rows
            elif kind in ("N", "S", "A", "K"):
                continue  # notices, parameter changes, notifications: nothing to do
            elif kind in ("1", "2", "n", "I", "T", "D"):
                continue  # no result rows are expected from the prelude, but they are harmless
            else:
                raise ProtocolError(f"{self.source}: unexpected protocol message {kind!r}")

    def _copy_rows(self, writer: ChunkWriter) -> int:
        """Move complete row messages from the buffer straight into the chunk file's map until a
        non-row message."""
        copied = 0
        while True:
            # room for every payload now in the buffer (they are shorter than their messages)
            out = writer.window(self.end - self.pos)
            pos, nbytes, rows, status = strip_copy_data(self.buf, self.pos, self.end, out, out.shape[0])
            self.pos = pos
            writer.commit(nbytes, rows)
            copied += rows
            if status == NEED_MORE:
                self._fill()
            elif status in (CUT, OUT_FULL):  # the next row does not fit what is left of the chunk
                if writer.chunk_rows:
                    writer.cut()
                else:
                    return copied  # one row larger than a chunk: the Python path writes it
            elif status == OTHER:
                return copied

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.conn.close()


class PsycopgCopyReader:
    """psycopg's ``Copy.read()``, one CopyData message (one row) per call: works over SSL."""

    name = "psycopg"

    def __init__(self, conn: psycopg.Connection, stop: threading.Event):
        self.conn = conn
        self.stop = stop
        self.source = "?"

    def begin(self, prelude: str, source: str) -> None:
        self.source = source
        try:
            self.conn.execute(prelude)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise _wrap_psycopg(exc, source) from exc

    def copy(self, statement: str, writer: ChunkWriter) -> int:
        source = writer.source
        pending = bytearray()
        pending_rows = 0
        first = True
        rows = 0
        try:
            with self.conn.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[arg-type]
                while data := copy.read():
                    if self.stop.is_set():
                        raise ExtractCancelled("extraction stopped")
                    row = memoryview(data)
                    if first:
                        row = _HeaderState.strip(row, source)
                        first = False
                    if len(row) == 2 and bytes(row) == COPY_TRAILER:
                        continue
                    if len(pending) + len(row) > writer.room and (pending_rows or writer.chunk_rows):
                        if pending_rows:
                            writer.write_rows(pending, pending_rows)
                            pending.clear()
                            pending_rows = 0
                        writer.cut()
                    if len(row) > writer.room:
                        writer.write_rows(row, 1)
                    else:
                        pending += row
                        pending_rows += 1
                    rows += 1
                    if len(pending) >= 1 << 20:
                        writer.write_rows(pending, pending_rows)
                        pending.clear()
                        pending_rows = 0
            if pending_rows:
                writer.write_rows(pending, pending_rows)
            writer.cut()
        except psycopg.Error as exc:
            writer.abort()
            raise _wrap_psycopg(exc, source) from exc
        except BaseException:
            writer.abort()
            raise
        return rows

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def _wrap_psycopg(exc: psycopg.Error, source: str) -> ServerError:
    diag = getattr(exc, "diag", None)
    code = getattr(diag, "sqlstate", None) if diag is not None else None
    return ServerError(f"{source}: PostgreSQL error {code}: {exc}", code, {})
