"""Deprecated name of :mod:`potlab.analysis.parity` (parity metrics; not to be confused with
:mod:`potlab.data.errors`, the DataError). Kept only while callers move; import from
``potlab.analysis.parity``."""

from potlab.analysis.parity import evaluate, parity_metrics  # noqa: F401
