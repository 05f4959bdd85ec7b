"""The one vocabulary of run outcomes, shared by ingest runs, pipeline runs, the CLI, the web app and the views.

``succeeded``: everything the run was asked to do was done. ``partial``: some of it was (the rest is recorded with
its reason). ``failed``: none of it was. ``abandoned``: the process died before it said. A run is ``running`` until
one of these is recorded. The CLI exits 0 only for ``succeeded``.
"""

from __future__ import annotations

__all__ = ["STATUSES", "exit_code", "outcome"]

STATUSES = ("succeeded", "partial", "failed", "abandoned")


def outcome(*, n_total: int, n_failed: int) -> str:
    """The status of a run of ``n_total`` items of which ``n_failed`` failed: succeeded, partial or failed."""
    if n_failed <= 0:
        return "succeeded"
    return "failed" if n_failed >= n_total else "partial"


def exit_code(status: str) -> int:
    """The CLI's exit code for a run's status: 0 when it succeeded, 1 otherwise (partial, failed, abandoned)."""
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; known: {', '.join(STATUSES)}")
    return 0 if status == "succeeded" else 1
