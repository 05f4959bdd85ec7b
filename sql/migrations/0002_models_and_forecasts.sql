-- Model registry, backtests, forecasts and explanations, each row traceable to the pipeline run, the model
-- version and the exact series versions it came from.

CREATE TABLE pipeline_runs (
    run_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command        text NOT NULL CHECK (command IN ('train', 'backtest', 'predict', 'run')),
    config_name    text NOT NULL,
    config_sha256  text NOT NULL,
    config         jsonb NOT NULL,
    code_version   text NOT NULL,
    triggered_by   text NOT NULL DEFAULT 'cli',
    ingest_run_id  bigint REFERENCES ingest_runs (ingest_run_id),
    status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    summary        jsonb,
    error          text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

-- the exact series versions (and how many of their rows) a run read, whatever its command
CREATE TABLE pipeline_run_data (
    run_id             bigint NOT NULL REFERENCES pipeline_runs (run_id),
    series_version_id  bigint NOT NULL REFERENCES series_versions (version_id),
    role               text NOT NULL CHECK (role IN ('target', 'feature')),
    row_count          integer NOT NULL,
    PRIMARY KEY (run_id, series_version_id)
);

CREATE TABLE models (
    model_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    config_name  text NOT NULL,
    name         text NOT NULL,              -- 'lightgbm_global', 'arima', ...
    frequency    text NOT NULL,              -- series of one frequency share a global model
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (config_name, name, frequency)
);

CREATE TABLE model_versions (
    model_version_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id          bigint NOT NULL REFERENCES models (model_id),
    run_id            bigint NOT NULL REFERENCES pipeline_runs (run_id),
    fingerprint       text NOT NULL,          -- sha256 of (model config, feature spec, data versions, code)
    artifact          bytea,                  -- pickled model, unless kept in an artifact folder
    artifact_path     text,
    artifact_sha256   text NOT NULL,
    artifact_bytes    bigint NOT NULL,
    params            jsonb NOT NULL,
    features          jsonb NOT NULL,         -- feature names in model order
    training_start    timestamp,
    training_end      timestamp,
    fitted            jsonb,                  -- per-series fitted details (e.g. ARIMA orders), fallbacks
    metrics           jsonb,                  -- backtest metrics of this model in the run that trained it
    library_versions  jsonb NOT NULL,
    code_version      text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (artifact IS NOT NULL OR artifact_path IS NOT NULL)
);
CREATE INDEX model_versions_fingerprint ON model_versions (model_id, fingerprint);

-- the exact series versions a model version was trained on (targets and exogenous features)
CREATE TABLE model_version_data (
    model_version_id   bigint NOT NULL REFERENCES model_versions (model_version_id),
    series_version_id  bigint NOT NULL REFERENCES series_versions (version_id),
    role               text NOT NULL CHECK (role IN ('target', 'feature')),
    row_count          integer NOT NULL,      -- rows of that version used (a version can grow by extension)
    last_ts            timestamp NOT NULL,
    PRIMARY KEY (model_version_id, series_version_id)
);

-- every backtest point forecast next to its actual, per evaluation mode
CREATE TABLE backtest_forecasts (
    run_id       bigint NOT NULL REFERENCES pipeline_runs (run_id),
    mode         text NOT NULL CHECK (mode IN ('latest', 'as_known')),
    model        text NOT NULL,
    series_id    bigint NOT NULL REFERENCES series (series_id),
    window_no    integer NOT NULL,             -- 0 = most recent origin
    cutoff       timestamp NOT NULL,           -- forecast origin (last training timestamp)
    ts           timestamp NOT NULL,
    step         integer NOT NULL,
    y            double precision NOT NULL,
    yhat         double precision NOT NULL,
    PRIMARY KEY (run_id, mode, model, series_id, window_no, step)
);

-- metrics in long form: one row per (run, mode, model, series or all, step or all, metric)
CREATE TABLE backtest_metrics (
    run_id     bigint NOT NULL REFERENCES pipeline_runs (run_id),
    mode       text NOT NULL CHECK (mode IN ('latest', 'as_known')),
    model      text NOT NULL,
    series_id  bigint REFERENCES series (series_id),   -- NULL = aggregated over series
    step       integer,                                -- NULL = aggregated over steps
    metric     text NOT NULL,                          -- mae, rmse, mape, smape, mase, bias, coverage_80, ...
    value      double precision
);
CREATE UNIQUE INDEX backtest_metrics_key
    ON backtest_metrics (run_id, mode, model, coalesce(series_id, 0), coalesce(step, 0), metric);

-- the per-series champion chosen by backtest score in a run
CREATE TABLE champions (
    run_id            bigint NOT NULL REFERENCES pipeline_runs (run_id),
    series_id         bigint NOT NULL REFERENCES series (series_id),
    model             text NOT NULL,
    model_version_id  bigint REFERENCES model_versions (model_version_id),
    metric            text NOT NULL,
    score             double precision,
    PRIMARY KEY (run_id, series_id)
);

-- forecasts are an archive: one row per (run, model version, series, target timestamp), never overwritten
-- by a later run; re-running the same run replaces its own rows
CREATE TABLE forecasts (
    run_id             bigint NOT NULL REFERENCES pipeline_runs (run_id),
    model_version_id   bigint NOT NULL REFERENCES model_versions (model_version_id),
    series_id          bigint NOT NULL REFERENCES series (series_id),
    series_version_id  bigint NOT NULL REFERENCES series_versions (version_id),
    ts                 timestamp NOT NULL,      -- the timestamp forecast
    step               integer NOT NULL,
    yhat               double precision NOT NULL,
    last_ts            timestamp NOT NULL,      -- forecast origin: last observation used
    last_value         double precision NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, model_version_id, series_id, ts)
);
CREATE INDEX forecasts_series ON forecasts (series_id, ts);

CREATE TABLE forecast_intervals (
    run_id            bigint NOT NULL,
    model_version_id  bigint NOT NULL,
    series_id         bigint NOT NULL,
    ts                timestamp NOT NULL,
    level             integer NOT NULL CHECK (level > 0 AND level < 100),
    lo                double precision NOT NULL,
    hi                double precision NOT NULL,
    PRIMARY KEY (run_id, model_version_id, series_id, ts, level),
    FOREIGN KEY (run_id, model_version_id, series_id, ts)
        REFERENCES forecasts (run_id, model_version_id, series_id, ts) ON DELETE CASCADE
);

-- top SHAP contributions per forecast of tree models
CREATE TABLE forecast_explanations (
    run_id            bigint NOT NULL,
    model_version_id  bigint NOT NULL,
    series_id         bigint NOT NULL,
    ts                timestamp NOT NULL,
    rank              integer NOT NULL,
    feature           text NOT NULL,
    feature_value     double precision,
    shap_value        double precision NOT NULL,
    base_value        double precision NOT NULL,
    PRIMARY KEY (run_id, model_version_id, series_id, ts, rank),
    FOREIGN KEY (run_id, model_version_id, series_id, ts)
        REFERENCES forecasts (run_id, model_version_id, series_id, ts) ON DELETE CASCADE
);

CREATE TABLE feature_importance (
    model_version_id  bigint NOT NULL REFERENCES model_versions (model_version_id),
    feature           text NOT NULL,
    mean_abs_shap     double precision,
    gain              double precision,
    PRIMARY KEY (model_version_id, feature)
);

-- The champion forecast of every series: the model chosen by the newest successful backtest, with that
-- model's newest forecasts from a successful run. Backtest, training and prediction may be separate runs
-- (as in the Airflow DAGs), so the champion is matched by model name, not by the run that chose it.
CREATE VIEW champion_forecasts AS
WITH champion AS (
    SELECT DISTINCT ON (c.series_id) c.series_id, c.model
    FROM champions c
    JOIN pipeline_runs r USING (run_id)
    WHERE r.status = 'succeeded'
    ORDER BY c.series_id, c.run_id DESC
), latest AS (
    SELECT DISTINCT ON (ch.series_id) ch.series_id, ch.model, f.run_id, f.model_version_id
    FROM champion ch
    JOIN models m ON m.name = ch.model
    JOIN model_versions mv ON mv.model_id = m.model_id
    JOIN forecasts f ON f.model_version_id = mv.model_version_id AND f.series_id = ch.series_id
    JOIN pipeline_runs r ON r.run_id = f.run_id AND r.status = 'succeeded'
    ORDER BY ch.series_id, f.run_id DESC
)
SELECT s.name AS series_name, s.source, l.model, f.run_id, f.model_version_id, f.ts, f.step, f.yhat,
       i80.lo AS lo_80, i80.hi AS hi_80, i95.lo AS lo_95, i95.hi AS hi_95,
       f.last_ts, f.last_value, f.yhat - f.last_value AS delta, f.series_version_id
FROM latest l
JOIN forecasts f ON f.run_id = l.run_id AND f.model_version_id = l.model_version_id AND f.series_id = l.series_id
JOIN series s ON s.series_id = f.series_id
LEFT JOIN forecast_intervals i80
       ON (i80.run_id, i80.model_version_id, i80.series_id, i80.ts, i80.level) = (f.run_id, f.model_version_id, f.series_id, f.ts, 80)
LEFT JOIN forecast_intervals i95
       ON (i95.run_id, i95.model_version_id, i95.series_id, i95.ts, i95.level) = (f.run_id, f.model_version_id, f.series_id, f.ts, 95);

-- The rows of a series up to p_cutoff as they were first known: the data as of the moment the first
-- observation at or after the cutoff was recorded. This is what a forecaster standing at that origin had,
-- so backtests on it are free of later revisions (Google Trends renormalisation, split adjustments).
CREATE FUNCTION series_observations_first_known(p_series_id bigint, p_cutoff timestamp)
RETURNS TABLE (ts timestamp, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT a.ts, a.value
    FROM series_observations_as_of(
        p_series_id,
        coalesce((SELECT min(o.recorded_at) FROM observations o
                  WHERE o.series_id = p_series_id AND o.ts >= p_cutoff), now())) a
    WHERE a.ts <= p_cutoff
    ORDER BY a.ts
$$;
