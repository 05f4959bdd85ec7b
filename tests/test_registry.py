"""The model registry under concurrency: two runs training the same fingerprint at once register it once."""

from __future__ import annotations

import threading

from forecasting.models.baselines import NaiveForecaster
from forecasting.store.registry import model_id_ensure, model_version_insert
from forecasting.store.results import pipeline_run_start


def test_two_concurrent_registrations_of_one_fingerprint_make_one_version(database, conn):
    run_id = pipeline_run_start(conn, command="train", config_name="p", config={}, code_version="test")
    model_id = model_id_ensure(conn, config_name="p", name="naive", frequency="D", partition_key="D:1/1")
    barrier = threading.Barrier(4)
    versions: list[int] = []

    def register() -> None:
        with database.connect() as own:
            barrier.wait()
            versions.append(model_version_insert(
                own, model_id=model_id, run_id=run_id, fingerprint="f" * 64, model=NaiveForecaster(), params={},
                features=[], training_start=None, training_end=None, fitted={"mase": float("nan")}, data=[],
                code_version="test", metrics={"latest": {"mase": float("inf")}}))

    threads = [threading.Thread(target=register) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(versions) == 4 and len(set(versions)) == 1
    stored = conn.execute("SELECT count(*), max(metrics::text), max(fitted::text) FROM model_versions").fetchone()
    assert stored == (1, '{"latest": {"mase": null}}', '{"mase": null}')  # NaN/inf stored as null, never refused
    forced = model_version_insert(conn, model_id=model_id, run_id=run_id, fingerprint="f" * 64,
                                  model=NaiveForecaster(), params={}, features=[], training_start=None,
                                  training_end=None, fitted={}, data=[], code_version="test", reuse_existing=False)
    assert forced not in versions  # a forced retraining registers a new version
