"""The modeling steps, each a function over one partition of a run (or, for ``select``, over the run);
``partitions`` splits a run's series into those partitions, ``table`` lists the steps and commands.

Every step reads its inputs from the store by (run id, partition key), writes its outputs there and
returns a small summary: ``features`` screens the series and builds the feature matrix, ``backtest``
scores every model on rolling origins, ``select`` picks each series' champion, ``train`` fits and
registers the models, ``predict`` forecasts with the registered models. ``forecasting.run`` composes them
for the CLI; the Airflow DAGs map them over partitions.
"""
