-- Every run of the forecasting DAGs as Airflow saw it, recorded by the plugin's listener.
CREATE VIEW v_airflow_runs AS
SELECT dag_id, run_id, run_type, state, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds, n_tasks, n_success, n_failed,
       message
FROM airflow_dag_runs;
