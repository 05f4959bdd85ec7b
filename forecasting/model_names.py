"""Names of the models a config may enable, in a module of their own: the Airflow DAG file offers them as
trigger choices at parse time, where importing the config module (pandas) would be too slow."""

MODEL_NAMES = ("naive", "seasonal_naive", "linear", "random_forest", "lightgbm_global", "arima", "hybrid")
