"""The forecast's model: Holt-Winters exponential smoothing with a daily season (statsmodels),
fitted on a series of hourly paid orders. statsmodels is imported when a forecast is first
asked for, not when the shop starts: it is heavy, and most processes never forecast."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from colonnade.modules.analytics.domain import SEASON_HOURS


def predict(history: Sequence[float], hours: int) -> list[float]:
    """The next `hours` values after `history` (at least two seasons long), none below 0."""
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        np.asarray(history, dtype=float),
        trend=None,
        seasonal="add",
        seasonal_periods=SEASON_HOURS,
        initialization_method="estimated",
    )
    with warnings.catch_warnings():
        # A short or flat history fits, with a warning that it converged slowly.
        warnings.simplefilter("ignore")
        fitted = model.fit()
    return [max(0.0, float(value)) for value in fitted.forecast(hours)]
