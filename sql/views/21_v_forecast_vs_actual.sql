-- Actuals and the latest champion forecast of every series on one time axis.
CREATE VIEW v_forecast_vs_actual AS
SELECT series_name, ts, value AS actual,
       NULL::double precision AS yhat, NULL::double precision AS lo_80, NULL::double precision AS hi_80,
       NULL::double precision AS lo_95, NULL::double precision AS hi_95, NULL::text AS model
FROM stg_observations_current
UNION ALL
SELECT series_name, ts, NULL, yhat, lo_80, hi_80, lo_95, hi_95, model
FROM champion_forecasts;
