-- Modeling as partitioned steps: a run is planned into partitions (targets of one frequency, at most
-- modeling.partition_size series each); every step of every partition records its outcome, models are
-- registered per partition, and series that cannot be modelled are recorded with their reason.

ALTER TABLE pipeline_runs DROP CONSTRAINT pipeline_runs_status_check;
ALTER TABLE pipeline_runs ADD CONSTRAINT pipeline_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed'));

-- a global model is trained per partition: the partition is part of the model's identity
ALTER TABLE models ADD COLUMN partition_key text NOT NULL DEFAULT '';
ALTER TABLE models DROP CONSTRAINT models_config_name_name_frequency_key;
ALTER TABLE models ADD CONSTRAINT models_identity UNIQUE (config_name, name, frequency, partition_key);

-- the partitions a run was planned into, and the series of each (in the config's order)
CREATE TABLE run_partitions (
    run_id         bigint NOT NULL REFERENCES pipeline_runs (run_id),
    partition_key  text NOT NULL,             -- '<freq>:<k>/<n>', stable while the config is unchanged
    frequency      text NOT NULL,
    part_no        integer NOT NULL CHECK (part_no >= 1),
    n_parts        integer NOT NULL CHECK (n_parts >= part_no),
    series_ids     bigint[] NOT NULL,
    PRIMARY KEY (run_id, partition_key)
);

-- one row per step and partition of a run ('' = a step over the whole run, such as select)
CREATE TABLE run_steps (
    run_id         bigint NOT NULL REFERENCES pipeline_runs (run_id),
    step           text NOT NULL CHECK (step IN ('features', 'backtest', 'select', 'train', 'predict')),
    partition_key  text NOT NULL DEFAULT '',
    status         text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    seconds        double precision,
    summary        jsonb,
    error          text,
    PRIMARY KEY (run_id, step, partition_key)
);

-- the model versions a training step of a partition produced or reused: what prediction loads
CREATE TABLE partition_models (
    run_id            bigint NOT NULL REFERENCES pipeline_runs (run_id),
    partition_key     text NOT NULL,
    model             text NOT NULL,
    model_version_id  bigint NOT NULL REFERENCES model_versions (model_version_id),
    reused            boolean NOT NULL,
    PRIMARY KEY (run_id, partition_key, model)
);

-- series (or one model of a series) a step could not model, and why; model NULL = the whole series
CREATE TABLE series_skips (
    run_id         bigint NOT NULL REFERENCES pipeline_runs (run_id),
    step           text NOT NULL,
    partition_key  text NOT NULL,
    series_id      bigint NOT NULL REFERENCES series (series_id),
    model          text,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX series_skips_key ON series_skips (run_id, step, series_id, coalesce(model, ''));

-- a partial run (some series skipped, with their reasons recorded) published the forecasts of all the others
CREATE OR REPLACE VIEW champion_forecasts AS
WITH champion AS (
    SELECT DISTINCT ON (c.series_id) c.series_id, c.model
    FROM champions c
    JOIN pipeline_runs r USING (run_id)
    WHERE r.status IN ('succeeded', 'partial')
    ORDER BY c.series_id, c.run_id DESC
), latest AS (
    SELECT DISTINCT ON (ch.series_id) ch.series_id, ch.model, f.run_id, f.model_version_id
    FROM champion ch
    JOIN models m ON m.name = ch.model
    JOIN model_versions mv ON mv.model_id = m.model_id
    JOIN forecasts f ON f.model_version_id = mv.model_version_id AND f.series_id = ch.series_id
    JOIN pipeline_runs r ON r.run_id = f.run_id AND r.status IN ('succeeded', 'partial')
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

CREATE OR REPLACE VIEW v_backtest_accuracy AS
SELECT r.run_id, r.config_name, r.finished_at AS run_finished_at, m.mode, m.model,
       s.name AS series_name, m.metric, m.value
FROM backtest_metrics m
JOIN pipeline_runs r USING (run_id)
LEFT JOIN series s ON s.series_id = m.series_id
WHERE m.step IS NULL AND r.status IN ('succeeded', 'partial');

-- what each run could not model, by name, for analysts and dashboards
CREATE VIEW v_series_skips AS
SELECT k.run_id, r.config_name, k.step, k.partition_key, s.name AS series_name, k.model, k.reason, k.created_at
FROM series_skips k
JOIN pipeline_runs r USING (run_id)
JOIN series s USING (series_id);

GRANT SELECT ON v_series_skips TO grafana_reader;
