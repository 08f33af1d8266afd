"""The one error type for bad input data: it names the file, the frame and the field."""

from __future__ import annotations

import os

from potlab.errors import InputError


class DataError(InputError):
    """Bad input data, located as precisely as known.

    Attributes
    ----------
    file:
        The path of the offending file, as given by the caller.
    frame:
        0-based frame index in that file, or None when the problem is not tied to a frame.
    field:
        The label or array concerned (e.g. ``"REF_forces"``, ``"cell"``), or None.
    group:
        The HDF5 group (molecule) for grouped formats, else None.
    reason:
        What is wrong, without the location prefix.

    ``str(err)`` reads e.g. ``train.xyz: frame 17: field 'REF_forces': contains NaN``.
    """

    def __init__(
        self,
        file: str | os.PathLike[str],
        reason: str,
        *,
        frame: int | None = None,
        field: str | None = None,
        group: str | None = None,
    ) -> None:
        self.file = os.fspath(file)
        self.frame = None if frame is None else int(frame)
        self.field = field
        self.group = group
        self.reason = reason
        parts = [self.file]
        if group is not None:
            parts.append(f"group {group!r}")
        if self.frame is not None:
            parts.append(f"frame {self.frame}")
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(reason)
        super().__init__(": ".join(parts))

    def __reduce__(self):  # keep the keyword-only attributes through pickling
        return (
            _rebuild,
            (self.file, self.reason, self.frame, self.field, self.group),
        )


def _rebuild(file, reason, frame, field, group) -> DataError:
    return DataError(file, reason, frame=frame, field=field, group=group)
