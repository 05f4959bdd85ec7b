-- Hyperparameter search by backtest ('forecasting tune'): a pipeline run of command 'tune' scores each trial
-- (a combination of estimator parameters and a lag set) on the rolling-origin windows, and records the best
-- trial per (config, model); the planner applies those parameters to the model in later runs.
ALTER TABLE pipeline_runs DROP CONSTRAINT pipeline_runs_command_check;
ALTER TABLE pipeline_runs ADD CONSTRAINT pipeline_runs_command_check
    CHECK (command IN ('train', 'backtest', 'predict', 'run', 'tune'));

CREATE TABLE tuning_trials (
    run_id       bigint NOT NULL REFERENCES pipeline_runs (run_id),
    model        text NOT NULL,
    trial        integer NOT NULL CHECK (trial >= 1),
    params       jsonb NOT NULL,             -- the trial's estimator parameters, over the config's
    target_lags  jsonb,                      -- the trial's lag set; NULL: the config's
    metric       text NOT NULL,              -- what the trials are ranked by
    score        double precision,           -- that metric pooled over series and steps; NULL: the trial failed
    metrics      jsonb NOT NULL,             -- every point metric, pooled the same way
    cutoffs      jsonb NOT NULL,             -- the backtest origins the trial was scored on
    n_forecasts  integer NOT NULL,
    seconds      double precision NOT NULL,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, model, trial)
);

CREATE TABLE tuned_parameters (
    config_name  text NOT NULL,
    model        text NOT NULL,
    params       jsonb NOT NULL,
    target_lags  jsonb,
    metric       text NOT NULL,
    score        double precision NOT NULL,
    run_id       bigint NOT NULL,
    trial        integer NOT NULL,
    tuned_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (config_name, model),
    FOREIGN KEY (run_id, model, trial) REFERENCES tuning_trials (run_id, model, trial)
);
