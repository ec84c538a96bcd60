"""Errors and warnings raised while reading STDF."""

from __future__ import annotations


class StdfFormatError(ValueError):
    """The byte stream is not valid STDF at ``offset`` (in the decompressed stream).

    ``records_read`` counts the records framed and decoded before the fault, so that a caller can
    report how far the file got and keep what was read aside; nothing after the fault is trusted.
    """

    def __init__(self, offset: int, path: str, records_read: int, reason: str = "") -> None:
        self.offset = int(offset)
        self.path = str(path)
        self.records_read = int(records_read)
        self.reason = reason
        super().__init__(
            f"{self.path}: invalid STDF at byte offset {self.offset} "
            f"(after {self.records_read} records): {reason}"
        )

    def __reduce__(self):  # picklable across process pools
        return (type(self), (self.offset, self.path, self.records_read, self.reason))


class StdfWarning(UserWarning):
    """The file is readable but departs from the specification (e.g. FAR CPU_TYPE contradicts byte order)."""
