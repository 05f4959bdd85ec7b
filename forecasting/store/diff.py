"""Pure comparison of a download with the stored current version: what is unchanged, new, changed, gone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

__all__ = ["Outcome", "VersionDiff", "diff_versions", "download_sha256"]


class Outcome(StrEnum):
    INITIAL = "initial"
    UNCHANGED = "unchanged"
    EXTENDED = "extended"
    REVISED = "revised"


@dataclass(frozen=True)
class VersionDiff:
    """Index arrays into the stored (old) and downloaded (new) arrays, both sorted by timestamp."""

    outcome: Outcome
    added_new: np.ndarray  # positions in new of timestamps absent from old
    changed_old: np.ndarray  # positions in old whose value changed beyond tolerance
    changed_new: np.ndarray  # the matching positions in new
    removed_old: np.ndarray  # positions in old of timestamps absent from new

    @property
    def n_added(self) -> int:
        return len(self.added_new)

    @property
    def n_changed(self) -> int:
        return len(self.changed_old)

    @property
    def n_removed(self) -> int:
        return len(self.removed_old)


def download_sha256(ts: np.ndarray, values: np.ndarray) -> str:
    """Content hash of a canonical download, so an identical re-download is recognised without reading rows."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ts, dtype="int64").tobytes())
    digest.update(np.ascontiguousarray(values, dtype="float64").tobytes())
    return digest.hexdigest()


def _changed(old: np.ndarray, new: np.ndarray, rtol: float) -> np.ndarray:
    # symmetric relative tolerance: the order of old and new must not matter
    scale = np.maximum(np.abs(old), np.abs(new))
    return np.abs(old - new) > rtol * scale


def diff_versions(
    old_ts: np.ndarray, old_values: np.ndarray, new_ts: np.ndarray, new_values: np.ndarray, *, rtol: float
) -> VersionDiff:
    """Classify a download against the current version.

    ``extended`` means only timestamps after the last stored one were added. A point inserted inside the
    stored history, a changed value or a dropped timestamp is a revision: the history the models saw moved.
    """
    empty = np.empty(0, dtype=np.intp)
    if len(old_ts) == 0:
        return VersionDiff(Outcome.INITIAL, np.arange(len(new_ts)), empty, empty, empty)

    common, old_idx, new_idx = np.intersect1d(old_ts, new_ts, assume_unique=True, return_indices=True)
    changed_mask = _changed(old_values[old_idx], new_values[new_idx], rtol)
    changed_old, changed_new = old_idx[changed_mask], new_idx[changed_mask]

    in_old = np.isin(new_ts, common, assume_unique=True)
    added_new = np.flatnonzero(~in_old)
    removed_old = np.flatnonzero(~np.isin(old_ts, common, assume_unique=True))

    if len(changed_old) == 0 and len(removed_old) == 0:
        if len(added_new) == 0:
            outcome = Outcome.UNCHANGED
        elif new_ts[added_new[0]] > old_ts[-1]:
            outcome = Outcome.EXTENDED
        else:
            outcome = Outcome.REVISED
    else:
        outcome = Outcome.REVISED
    return VersionDiff(outcome, added_new, changed_old.astype(np.intp), changed_new.astype(np.intp), removed_old)
