"""How far LightGBM's score moves with its seed and its settings, and whether a holdout inside the training data
ranks the settings as the test part does (not a test; the README's "How much of that is noise" comes from it).

    python benchmarks/lightgbm_settings.py --data ../shared/data/m4 --frequency Weekly --transforms diff scale \\
        --seeds 0 1 2 3
    python benchmarks/lightgbm_settings.py --data ../shared/data/m3-quarterly --frequency Quarterly \\
        --transforms diff scale --set objective=l2 --set num_leaves=15 --set history=260

Every variant is the pipeline's ``lightgbm_global`` with the default config plus the variant's
``models.lightgbm`` settings (``--set name=value[,name=value]``; values are read as JSON where they parse,
``history=N`` trains on each series' last N points only). Each is fitted twice: on all but the last horizon
of every training series, scored on that horizon ("holdout": what a choice made inside the training data
sees), and on the whole training data, scored on the test part ("test"). Both with M4's sMAPE, MASE and OWA
against M4's Naive2. With several ``--seeds`` the default settings run once per seed, and the average of
their forecasts is scored too; the variants use the first seed. Without ``--set``, the variants the README
lists are run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field

import pandas as pd

from forecasting.backtesting.m4 import M4_FREQ, M4_HORIZON, m4_scores, naive2_forecasts, owa_table, read_m4
from forecasting.config import parse_config
from forecasting.features.panel import SERIES, STEP, TS, YHAT
from forecasting.models.registry import build_model

MODEL = "lightgbm_global"
HISTORY = "history"  # not a LightGBM parameter: keep each series' last N training points
README_VARIANTS = (
    "num_leaves=15", "num_leaves=63", "min_child_samples=5", "min_child_samples=50", "min_child_samples=100",
    "objective=l2", "n_estimators=600", "learning_rate=0.03,n_estimators=500", "learning_rate=0.1",
    "feature_fraction=0.5", "feature_fraction=1.0", "bagging_fraction=1.0,bagging_freq=0", "extra_trees=true",
    "reg_lambda=1", "history=260", "history=520",
)


@dataclass(frozen=True)
class Variant:
    label: str
    params: dict = field(default_factory=dict)
    history: int | None = None
    seed: int = 0


def parse_variant(text: str, seed: int) -> Variant:
    """``name=value[,name=value]`` -> a Variant; a value is JSON where it parses (15, 0.5, true), else a string."""
    params: dict = {}
    history = None
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {text!r}: expected name=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if name == HISTORY:
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"--set {text!r}: {HISTORY} must be a whole number of points >= 2")
            history = value
        else:
            params[name] = value
    return Variant(label=text, params=params, history=history, seed=seed)


def variant_config(variant: Variant, horizon: int, transforms: list[str] | None):
    """The default pipeline config with the variant's LightGBM settings, seed and (when given) fixed transforms."""
    preprocessing: dict = {"horizon": horizon}
    if transforms:
        preprocessing["target_transforms"] = transforms
    return parse_config({"name": "lightgbm-settings",
                         "series": [{"name": "placeholder", "source": "sample", "params": {"dataset": "nile"}}],
                         "preprocessing": preprocessing,
                         "models": {"enabled": [MODEL], "seed": variant.seed, "lightgbm": variant.params}})


def split_last(panel: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every series without its last ``horizon`` points, those points)."""
    position = panel.groupby(SERIES, sort=False).cumcount(ascending=False)
    return panel[position >= horizon].reset_index(drop=True), panel[position < horizon].reset_index(drop=True)


def forecast(variant: Variant, train: pd.DataFrame, frequency: str, transforms: list[str] | None) -> pd.DataFrame:
    horizon = M4_HORIZON[frequency]
    config = variant_config(variant, horizon, transforms)
    if variant.history is not None:
        train = train.groupby(SERIES, sort=False).tail(variant.history).reset_index(drop=True)
    model = build_model(MODEL, config, has_exog=False).fit(train, freq=M4_FREQ[frequency])
    return model.predict(horizon)[[SERIES, TS, STEP, YHAT]]


def owa_scores(forecasts: dict[str, pd.DataFrame], train: pd.DataFrame, test: pd.DataFrame,
               frequency: str) -> pd.DataFrame:
    """sMAPE, MASE and OWA (against M4's Naive2 fitted on ``train``) of each labelled forecast."""
    pieces = [f.assign(model=label) for label, f in forecasts.items()]
    pieces.append(naive2_forecasts(train, frequency).assign(model="Naive2 (M4)"))
    table = owa_table(m4_scores(pd.concat(pieces, ignore_index=True), train, test, frequency),
                      reference="Naive2 (M4)")
    return table.drop(index="Naive2 (M4)")


def seed_average(forecasts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(forecasts).groupby([SERIES, TS, STEP], as_index=False)[YHAT].mean()


def run(data: str, frequency: str, variants: list[Variant], seeds: list[int],
        transforms: list[str] | None) -> pd.DataFrame:
    """One row per label: holdout and test sMAPE / MASE / OWA, and the seconds of the test fit."""
    train, test = read_m4(data, frequency)
    parts = {"holdout": split_last(train, M4_HORIZON[frequency]), "test": (train, test)}
    runs = [Variant(label=f"default, seed {seed}", seed=seed) for seed in seeds] + variants
    results, seconds = {}, {}
    for part, (fit_on, score_on) in parts.items():
        forecasts = {}
        for number, variant in enumerate(runs, 1):
            started = time.perf_counter()
            forecasts[variant.label] = forecast(variant, fit_on, frequency, transforms)
            seconds[variant.label] = time.perf_counter() - started
            print(f"  {part} {number}/{len(runs)}: {variant.label} ({seconds[variant.label]:.0f} s)",
                  file=sys.stderr, flush=True)
        if len(seeds) > 1:
            forecasts[f"average of seeds {' '.join(map(str, seeds))}"] = seed_average(
                [forecasts[f"default, seed {seed}"] for seed in seeds])
        results[part] = owa_scores(forecasts, fit_on, score_on, frequency)
    table = results["holdout"].add_prefix("holdout_").join(results["test"].add_prefix("test_"))
    table["test_fit_s"] = pd.Series(seconds)
    return table.loc[[label for label in [*(v.label for v in runs), *table.index] if label in table.index]
                     ].drop_duplicates()


def rank_agreement(table: pd.DataFrame) -> float:
    """Spearman correlation of the holdout and test OWA over the rows (1: the holdout ranks as the test does)."""
    return float(table["holdout_owa"].rank().corr(table["test_owa"].rank()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/m4")
    parser.add_argument("--frequency", default="Weekly", choices=sorted(M4_HORIZON))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", dest="variants", action="append", metavar="NAME=VALUE[,NAME=VALUE]",
                        help="a LightGBM settings variant (repeat the flag for more); default: the README's list")
    parser.add_argument("--no-variants", action="store_true", help="only the default settings, per seed")
    parser.add_argument("--transforms", nargs="+", choices=["scale", "diff", "sdiff"],
                        help="fix the target transforms (default: 'auto', chosen per fit as the pipeline does)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    texts = [] if args.no_variants else (args.variants or list(README_VARIANTS))
    try:
        variants = [parse_variant(text, args.seeds[0]) for text in texts]
    except ValueError as error:
        parser.error(str(error))
    table = run(args.data, args.frequency, variants, args.seeds, args.transforms)
    print(f"{args.frequency}: {MODEL}, horizon {M4_HORIZON[args.frequency]}, transforms "
          f"{' '.join(args.transforms) if args.transforms else 'auto'}")
    print(f"{'variant':<40}{'holdout OWA':>12}{'test sMAPE':>11}{'test MASE':>10}{'test OWA':>9}{'fit s':>7}")
    for label, row in table.iterrows():
        print(f"{label:<40}{row.holdout_owa:>12.3f}{row.test_smape:>11.3f}{row.test_mase:>10.3f}"
              f"{row.test_owa:>9.3f}{row.test_fit_s:>7.0f}")
    if len(table) > 2:
        print(f"rank agreement of holdout and test OWA (Spearman): {rank_agreement(table):.2f}")
    spread = table.loc[[f"default, seed {seed}" for seed in args.seeds], "test_owa"]
    print(f"test OWA over seeds {' '.join(map(str, args.seeds))}: {spread.min():.3f} to {spread.max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
