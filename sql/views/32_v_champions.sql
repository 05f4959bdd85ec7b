-- The champion chosen per series in every successful (or partial) run, with its backtest score and how it was
-- chosen (strategy: per_series, robust, pooled or untested; see migration 0013; empty for older runs).
CREATE VIEW v_champions AS
SELECT c.run_id, r.config_name AS pipeline, r.finished_at AS run_finished_at, s.name AS series_name, s.source,
       c.model, c.model_version_id, c.metric, c.score, c.strategy
FROM champions c
JOIN pipeline_runs r USING (run_id)
JOIN series s ON s.series_id = c.series_id
WHERE r.status IN ('succeeded', 'partial');
