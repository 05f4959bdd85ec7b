"""Real data sets that statsmodels ships inside its wheel: the demo and end-to-end tests run offline."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import model_validator

from forecasting.sources.base import FetchResult, SeriesSource, SourceParams, ValueBounds, to_canonical

__all__ = ["SampleParams", "SampleSource"]

# macrodata: US quarterly macro series 1959Q1-2009Q3. Units from the statsmodels documentation.
_MACRO_UNITS = {
    "realgdp": "billions of chained 2005 USD",
    "realcons": "billions of chained 2005 USD",
    "realinv": "billions of chained 2005 USD",
    "realgovt": "billions of chained 2005 USD",
    "realdpi": "billions of chained 2005 USD",
    "cpi": "index 1982-84=100",
    "m1": "billions of USD",
    "tbilrate": "percent",
    "unemp": "percent",
    "pop": "millions",
    "infl": "percent",
    "realint": "percent",
}
_MACRO_NON_NEGATIVE = {"tbilrate", "unemp"}
_MACRO_SIGNED = {"infl", "realint"}


class SampleParams(SourceParams):
    dataset: Literal["co2", "macrodata", "sunspots", "nile"]
    column: str | None = None

    @model_validator(mode="after")
    def _column_fits_dataset(self) -> SampleParams:
        if self.dataset == "macrodata":
            if self.column not in _MACRO_UNITS:
                raise ValueError(f"macrodata needs column, one of: {', '.join(sorted(_MACRO_UNITS))}")
        elif self.column is not None:
            raise ValueError(f"dataset {self.dataset!r} has a single series; remove 'column'")
        return self


def _co2() -> tuple[pd.Series, str, str]:
    import statsmodels.api as sm

    data = sm.datasets.co2.load_pandas().data["co2"]
    return data, "W-SAT", "ppm"


def _macrodata(column: str) -> tuple[pd.Series, str, str]:
    import statsmodels.api as sm

    data = sm.datasets.macrodata.load_pandas().data
    periods = pd.PeriodIndex.from_fields(year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q")
    return pd.Series(data[column].to_numpy(), index=periods.to_timestamp()), "QS-JAN", _MACRO_UNITS[column]


def _yearly(loader: str, column: str, year_column: str, unit: str) -> tuple[pd.Series, str, str]:
    import statsmodels.api as sm

    data = getattr(sm.datasets, loader).load_pandas().data
    index = pd.to_datetime(data[year_column].astype(int).astype(str), format="%Y")
    return pd.Series(data[column].to_numpy(), index=index), "YS-JAN", unit


class SampleSource(SeriesSource):
    name = "sample"
    params_model = SampleParams

    def fetch(self, params: SampleParams, *, series: str) -> FetchResult:
        if params.dataset == "co2":
            data, freq, unit = _co2()
        elif params.dataset == "macrodata":
            data, freq, unit = _macrodata(params.column)
        elif params.dataset == "sunspots":
            data, freq, unit = _yearly("sunspots", "SUNACTIVITY", "YEAR", "mean sunspot number")
        else:
            data, freq, unit = _yearly("nile", "volume", "year", "10^8 m^3")
        return FetchResult(frame=to_canonical(data.index, data.to_numpy()), frequency=freq, unit=unit)

    def bounds(self, params: SampleParams) -> ValueBounds:
        if params.column in _MACRO_SIGNED:
            return ValueBounds()
        if params.column in _MACRO_NON_NEGATIVE or params.dataset == "sunspots":
            return ValueBounds(min_value=0)
        return ValueBounds(min_value=0, strict_min=True)
