"""Names of the models a config may enable, importable without pandas: the Airflow DAG file offers them as
trigger choices at parse time. The registry is the one list."""

from forecasting.models.registry import DEFAULT_MODELS, MODELS

__all__ = ["DEFAULT_MODELS", "MODEL_NAMES"]

MODEL_NAMES = tuple(MODELS)
