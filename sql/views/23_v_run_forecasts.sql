-- Every forecast of a published (succeeded or partial) run with its model and run; is_champion: the model was the
-- series' champion as chosen by the newest successful (or partial) backtest at or before that run, i.e. what that run
-- published. A run's forecasts appear all at once, when it is published: a running, failed or abandoned run's rows
-- (a predict step killed half-way) never show.
CREATE VIEW v_run_forecasts AS
SELECT f.run_id, r.config_name AS pipeline, r.status AS run_status, s.name AS series_name, s.source,
       m.name AS model, f.model_version_id, f.ts, f.step, f.yhat, f.last_ts, f.last_value, f.series_version_id,
       f.created_at, coalesce(m.name = ch.model, false) AS is_champion
FROM forecasts f
JOIN pipeline_runs r ON r.run_id = f.run_id
JOIN series s ON s.series_id = f.series_id
JOIN model_versions mv ON mv.model_version_id = f.model_version_id
JOIN models m ON m.model_id = mv.model_id
LEFT JOIN LATERAL (
    SELECT c.model
    FROM champions c
    JOIN pipeline_runs cr ON cr.run_id = c.run_id
    WHERE c.series_id = f.series_id AND c.run_id <= f.run_id AND cr.status IN ('succeeded', 'partial')
    ORDER BY c.run_id DESC
    LIMIT 1
) ch ON true
WHERE r.status IN ('succeeded', 'partial');

COMMENT ON COLUMN v_run_forecasts.yhat IS 'point forecast, in the target''s unit';
