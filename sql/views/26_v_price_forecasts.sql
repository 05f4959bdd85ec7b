-- Price series (Yahoo Finance): the champion forecast at the end of its horizon and the expected return to it.
-- The web app adds the probability of an up move, the signal and the backtest statistics (forecasting/analysis/signals.py).
CREATE VIEW v_price_forecasts AS
SELECT f.series_name, f.source, f.run_id, f.model, f.model_version_id, f.last_ts, f.last_value,
       f.ts AS horizon_ts, f.step AS horizon, f.yhat, f.yhat / nullif(f.last_value, 0) - 1 AS expected_return
FROM champion_forecasts f
WHERE f.source = 'yahoo_finance'
  AND f.step = (SELECT max(g.step) FROM champion_forecasts g
                WHERE g.series_name = f.series_name AND g.source = f.source);

COMMENT ON COLUMN v_price_forecasts.expected_return IS
    'forecast change from the last price to the horizon''s end, a fraction (0.01 = 1%)';
