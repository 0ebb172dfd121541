"""The rates and rhythms of the generated shop (:func:`~allsource_lab.datasets.shop_events`)."""

from __future__ import annotations

import dataclasses
import math

from allsource_lab.errors import InvalidArgument

__all__ = ["ShopProfile"]

# Relative traffic by hour of day (UTC, the shop's clock) and by weekday (Monday first):
# a night trough, a lunch bump, an evening peak; weekends busier.
_HOURLY = (
    0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.45, 0.7, 0.85, 0.95, 1.05,
    1.2, 1.15, 1.0, 0.95, 1.0, 1.1, 1.3, 1.55, 1.7, 1.6, 1.15, 0.6,
)  # fmt: skip
_WEEKLY = (0.95, 0.9, 0.9, 0.95, 1.05, 1.25, 1.2)


@dataclasses.dataclass(frozen=True, slots=True)
class ShopProfile:
    """The shop's rates and distributions; pass one to :func:`shop_events` to change them.

    Rates are probabilities (0-1) per the thing named; ``*_median_*`` are medians of
    log-normal durations in the unit their name ends with.

    >>> ShopProfile(products=50).products
    50
    >>> ShopProfile(cart_rate=2.0)
    Traceback (most recent call last):
    ...
    allsource_lab.errors.InvalidArgument: cart_rate must be between 0 and 1, not 2.0
    """

    products: int = 1000
    # Zipf exponent: the product of popularity rank r is viewed in proportion to r**-s.
    popularity_exponent: float = 1.1
    price_median_cents: int = 2500
    price_sigma: float = 0.9  # log-normal spread of product prices
    launch_fraction: float = 0.2  # of users, registering on the first day
    # Sessions per user per day: log-normal across users (sigma), median below.
    sessions_per_day_median: float = 0.2
    sessions_per_day_sigma: float = 1.0
    pages_per_session_mean: float = 5.0  # geometric
    page_gap_median_s: float = 30.0
    page_gap_sigma: float = 1.0
    app_share: float = 0.45  # of sessions (the rest is the web shop)
    cart_rate: float = 0.12  # of page views
    checkout_rate: float = 0.45  # of sessions with a cart
    pay_rate: float = 0.92  # of orders
    pay_delay_median_s: float = 90.0
    ship_rate: float = 0.95  # of paid orders; the others are cancelled out of stock
    ship_delay_median_h: float = 20.0
    cancel_unpaid_rate: float = 0.7  # of unpaid orders
    cancel_delay_median_h: float = 2.0
    upgrade_rate: float = 0.15  # of users with a paid order
    upgrade_delay_median_days: float = 3.0
    late_view_rate: float = 0.03  # of app page views, synced after being offline
    late_view_delay_median_s: float = 1800.0
    late_ship_rate: float = 0.1  # of shipments, reported in a later warehouse batch
    late_ship_delay_median_h: float = 30.0
    correction_rate: float = 0.02  # of orders
    correction_delay_median_h: float = 24.0
    hourly: tuple[float, ...] = _HOURLY  # 24 relative weights, 00:00 UTC first
    weekly: tuple[float, ...] = _WEEKLY  # 7 relative weights, Monday first

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_rate", "_fraction", "_share")) and not 0 <= value <= 1:
                raise InvalidArgument(f"{f.name} must be between 0 and 1, not {value!r}")
            if f.name.endswith(("_median_s", "_median_h", "_median_days", "_sigma")) and not (
                value > 0 and math.isfinite(value)
            ):
                raise InvalidArgument(f"{f.name} must be a positive number, not {value!r}")
        if self.products < 1 or self.price_median_cents < 1:
            raise InvalidArgument("products and price_median_cents must be >= 1")
        if self.pages_per_session_mean < 1 or self.sessions_per_day_median <= 0:
            raise InvalidArgument(
                "pages_per_session_mean must be >= 1, sessions_per_day_median > 0"
            )
        if len(self.hourly) != 24 or len(self.weekly) != 7:
            raise InvalidArgument("hourly needs 24 weights and weekly 7")
        if min(self.hourly) < 0 or min(self.weekly) < 0 or not sum(self.hourly) > 0:
            raise InvalidArgument("hourly and weekly weights must be >= 0, with some > 0")
