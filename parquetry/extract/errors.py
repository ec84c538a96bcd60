"""Errors raised by extraction. Every message names the table (or query) it is about."""

from __future__ import annotations


class ExtractError(RuntimeError):
    """Extraction of a table failed; the message names the table and, when known, the page range."""


class ServerError(ExtractError):
    """PostgreSQL answered a statement with an ErrorResponse.

    ``sqlstate`` is the five-character SQLSTATE code and ``fields`` all fields of the response.
    """

    def __init__(self, message: str, sqlstate: str | None = None, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.fields = fields or {}


class ProtocolError(ExtractError):
    """The server's byte stream did not follow the frontend/backend protocol or the binary COPY format."""


class ExtractCancelled(ExtractError):
    """A stage stopped because another stage failed first (never the error reported to the caller)."""
