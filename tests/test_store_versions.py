"""Version-aware upsert against the real embedded PostgreSQL: outcomes, storage cost, exact read-back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest
from conftest import make_series

from forecasting.errors import StoreError
from forecasting.store.diff import Outcome
from forecasting.store.selectors import series_read, series_versions_list
from forecasting.store.writers import SeriesMeta, series_upsert

META = SeriesMeta(source="csv", name="demand", params={"path": "x.csv"}, frequency="D", unit="units")


def _observation_rows(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM observations").fetchone()[0]


def _upsert(conn, frame, **kwargs):
    return series_upsert(conn, meta=META, frame=frame, **kwargs)


def test_first_load_creates_version_one(conn):
    frame = make_series(30)
    result = _upsert(conn, frame)
    assert (result.outcome, result.version_no, result.n_rows, result.n_written) == (
        Outcome.INITIAL,
        1,
        30,
        30,
    )
    versions = series_versions_list(conn, name="demand")
    assert versions[["version_no", "reason", "is_current", "row_count"]].values.tolist() == [
        [1, "initial", True, 30]
    ]
    pd.testing.assert_frame_equal(series_read(conn, name="demand"), frame)


def test_unchanged_redownload_writes_no_rows(conn):
    frame = make_series(30)
    _upsert(conn, frame)
    before = _observation_rows(conn)
    result = _upsert(conn, frame.copy())
    assert result.outcome is Outcome.UNCHANGED
    assert result.n_written == 0
    assert _observation_rows(conn) == before
    assert len(series_versions_list(conn, name="demand")) == 1


def test_value_change_within_tolerance_is_unchanged(conn):
    frame = make_series(10)
    _upsert(conn, frame)
    noisy = frame.assign(value=frame["value"] * (1 + 1e-12))
    assert _upsert(conn, noisy).outcome is Outcome.UNCHANGED
    # and the next identical noisy download takes the hash fast path, still without a version
    assert _upsert(conn, noisy).outcome is Outcome.UNCHANGED
    assert _observation_rows(conn) == 10
    pd.testing.assert_frame_equal(series_read(conn, name="demand"), frame)


def test_new_points_after_the_end_extend_the_current_version(conn):
    full = make_series(40)
    _upsert(conn, full.iloc[:30])
    result = _upsert(conn, full)
    assert (result.outcome, result.version_no, result.n_added, result.n_written, result.n_rows) == (
        Outcome.EXTENDED,
        1,
        10,
        10,
        40,
    )
    versions = series_versions_list(conn, name="demand")
    assert versions[["version_no", "row_count", "n_extended"]].values.tolist() == [[1, 40, 10]]
    assert _observation_rows(conn) == 40
    pd.testing.assert_frame_equal(series_read(conn, name="demand", version=1), full)


def test_changed_past_value_creates_a_revision_storing_only_what_it_needs(conn):
    original = make_series(100)
    _upsert(conn, original)
    revised = original.copy()
    revised.loc[[10, 50], "value"] += 1.0
    revised = pd.concat([revised, make_series(103).iloc[100:]], ignore_index=True)  # plus 3 new points

    result = _upsert(conn, revised)

    assert (result.outcome, result.version_no) == (Outcome.REVISED, 2)
    assert (result.n_changed, result.n_added, result.n_removed) == (2, 3, 0)
    assert result.n_written == 5  # 2 changed + 3 new; the 98 unchanged rows are shared, not copied
    assert _observation_rows(conn) == 105
    pd.testing.assert_frame_equal(series_read(conn, name="demand", version=1), original)
    pd.testing.assert_frame_equal(series_read(conn, name="demand", version=2), revised)
    versions = series_versions_list(conn, name="demand")
    assert versions[
        ["version_no", "reason", "is_current", "n_changed", "n_added", "n_removed"]
    ].values.tolist() == [[1, "initial", False, 0, 0, 0], [2, "revised", True, 2, 3, 0]]


def test_dropped_past_timestamp_creates_a_revision(conn):
    original = make_series(20)
    _upsert(conn, original)
    shorter = original.drop(index=[0, 7]).reset_index(drop=True)
    result = _upsert(conn, shorter)
    assert (result.outcome, result.n_removed, result.n_written, result.n_rows) == (Outcome.REVISED, 2, 0, 18)
    assert _observation_rows(conn) == 20  # closing rows writes no new ones
    pd.testing.assert_frame_equal(series_read(conn, name="demand", version=1), original)
    pd.testing.assert_frame_equal(series_read(conn, name="demand"), shorter)


def test_point_inserted_inside_history_is_a_revision_not_an_extension(conn):
    full = make_series(10)
    with_gap = full.drop(index=4).reset_index(drop=True)
    _upsert(conn, with_gap)
    result = _upsert(conn, full)
    assert (result.outcome, result.n_added, result.version_no) == (Outcome.REVISED, 1, 2)


def _append(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    ts = pd.date_range(frame["ts"].iloc[-1] + pd.Timedelta(days=1), periods=n, freq="D").astype(
        "datetime64[ns]"
    )
    tail = pd.DataFrame({"ts": ts, "value": rng.normal(50, 5, n).round(3)})
    return pd.concat([frame, tail], ignore_index=True)


def test_every_earlier_version_reads_back_identical_after_many_revisions(conn):
    rng = np.random.default_rng(42)
    downloads = [make_series(60)]
    for step in range(8):
        frame = downloads[-1].copy()
        kind = step % 4
        if kind == 0:  # renormalisation-style rewrite of part of the history
            idx = rng.choice(len(frame), size=10, replace=False)
            frame.loc[idx, "value"] = (frame.loc[idx, "value"] * 1.1).round(3)
        elif kind == 1:  # extension
            frame = _append(frame, 5, rng)
        elif kind == 2:  # history window moves: oldest points dropped
            frame = frame.iloc[3:].reset_index(drop=True)
        else:  # a revision that also appends
            frame.loc[len(frame) - 1, "value"] += 2.5
            frame = _append(frame, 6, rng)
        downloads.append(frame)

    version_of = []
    for frame in downloads:
        version_of.append(_upsert(conn, frame).version_no)

    # the last download of each version is what that version holds
    last_per_version = {v: f for v, f in zip(version_of, downloads, strict=True)}
    assert len(last_per_version) > 4
    for version, frame in last_per_version.items():
        pd.testing.assert_frame_equal(series_read(conn, name="demand", version=version), frame)
    # the shared-row layout stores far fewer rows than a copy per version would
    copies = sum(len(f) for f in last_per_version.values())
    assert _observation_rows(conn) < copies / 2


def test_as_of_reads_return_what_was_known_then(conn):
    full = make_series(15)
    _upsert(conn, full.iloc[:10])
    first_known = conn.execute("SELECT now()").fetchone()[0]
    _upsert(conn, full)  # extension: appended after first_known
    after_extension = conn.execute("SELECT now()").fetchone()[0]
    revised = full.assign(value=full["value"] + 1)
    _upsert(conn, revised)

    pd.testing.assert_frame_equal(series_read(conn, name="demand", as_of=first_known), full.iloc[:10])
    pd.testing.assert_frame_equal(series_read(conn, name="demand", as_of=after_extension), full)
    pd.testing.assert_frame_equal(series_read(conn, name="demand"), revised)
    with pytest.raises(StoreError, match="had no stored version at"):
        series_read(conn, name="demand", as_of="2000-01-01T00:00:00+00:00")


def test_stored_rows_and_versions_are_immutable(conn):
    _upsert(conn, make_series(5))
    with pytest.raises(psycopg.errors.RaiseException, match="observations are immutable"):
        conn.execute("UPDATE observations SET value = value + 1")
    with pytest.raises(psycopg.errors.RaiseException, match="observations are immutable"):
        conn.execute("DELETE FROM observations")
    _upsert(conn, make_series(5).assign(value=1.0))  # supersedes version 1
    with pytest.raises(psycopg.errors.RaiseException, match="is immutable"):
        conn.execute("UPDATE series_versions SET row_count = 99 WHERE version_no = 1")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO observations (series_id, ts, value, valid_from) "
            "SELECT series_id, ts, 0, 3 FROM observations WHERE valid_to IS NULL LIMIT 1"
        )


def test_unknown_version_and_series_are_clear_errors(conn):
    _upsert(conn, make_series(5))
    with pytest.raises(StoreError, match="series 'demand' has no version 7"):
        series_read(conn, name="demand", version=7)
    with pytest.raises(StoreError, match="series 'nope' is not stored"):
        series_read(conn, name="nope")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"ts": pd.to_datetime(["2024-01-02", "2024-01-01"]), "value": [1.0, 2.0]}),
            "field 'ts' must be strictly increasing",
        ),
        (
            pd.DataFrame({"ts": pd.to_datetime(["2024-01-01", "2024-01-02"]), "value": [1.0, np.nan]}),
            "field 'value' holds NaN",
        ),
        (
            pd.DataFrame({"ts": pd.to_datetime(["2024-01-01"]), "value": ["x"]}),
            "field 'value' is not numeric",
        ),
        (pd.DataFrame({"ts": pd.to_datetime([]), "value": []}), "refusing to store an empty download"),
    ],
)
def test_store_refuses_frames_that_break_its_contract(conn, frame, message):
    with pytest.raises(StoreError, match=f"series 'demand': {message}"):
        _upsert(conn, frame)
    assert _observation_rows(conn) == 0


def _first_known(conn, cutoff: pd.Timestamp) -> pd.Series:
    rows = conn.execute(
        "SELECT ts, value FROM series_observations_first_known("
        "(SELECT series_id FROM series WHERE name = 'demand'), %s)", (cutoff.to_pydatetime(),)).fetchall()
    return pd.Series([v for _, v in rows], index=pd.DatetimeIndex([t for t, _ in rows]), dtype="float64")


def test_first_known_past_a_series_end_is_the_vintage_that_first_held_its_data(conn):
    # A series that ended before the cut-off (a delisted ticker, a feature that stopped) has no point at or after
    # it: what a forecaster at that cut-off had is the vintage that first held its last point, never a revision
    # stored later (reading today's data there leaked renormalisations into as-known backtests).
    frame = make_series(10)
    _upsert(conn, frame)
    _upsert(conn, frame.assign(value=frame["value"] * 1.5))  # rewrites history: version 2
    cutoff = frame["ts"].iloc[-1] + pd.Timedelta(days=5)
    np.testing.assert_allclose(_first_known(conn, cutoff).to_numpy(), frame["value"].to_numpy())
    # at a cut-off inside the data the rule is unchanged: the vintage stored when the next point was first known
    inside = frame["ts"].iloc[6]
    np.testing.assert_allclose(_first_known(conn, inside).to_numpy(), frame["value"].iloc[:7].to_numpy())


def test_first_known_past_the_end_of_an_extended_series_keeps_its_later_points(conn):
    # extensions are not revisions: points appended later are part of the data up to the cut-off once they exist
    frame = make_series(12)
    _upsert(conn, frame.iloc[:8])
    _upsert(conn, frame)
    cutoff = frame["ts"].iloc[-1] + pd.Timedelta(days=1)
    np.testing.assert_allclose(_first_known(conn, cutoff).to_numpy(), frame["value"].to_numpy())
    assert _first_known(conn, frame["ts"].iloc[0] - pd.Timedelta(days=1)).empty
