-- How each champion was chosen, so that a reader of the champions can tell why a series' champion is not the
-- model with its lowest backtest score: the partition's champion strategy ('per_series': the series' own best;
-- 'robust': its own best only where it beat the partition's pooled best clearly in every window, else that pooled
-- best; 'pooled': the partition's best over all its series, for every series), or 'untested' for a series too
-- short for one backtest window (the pooled best among the models that can fit it). Empty for earlier runs.
ALTER TABLE champions ADD COLUMN strategy text
    CHECK (strategy IN ('per_series', 'robust', 'pooled', 'untested'));
