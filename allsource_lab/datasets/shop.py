"""A deterministic synthetic history of an online shop: users, sessions, carts, orders.

Everything follows from a seed and a start time (never the wall clock), so the same
arguments give byte-identical tables. The shape is meant to look like a real shop's log:

* users register on launch day or later, following the shop's daily and weekly rhythm;
  how often each comes back is log-normal across users (a few are very active);
* a session is a run of page views with log-normal gaps; products are viewed with
  Zipf-like popularity and some views add the product to the cart;
* a session with a cart may check out: ``order.placed`` (the amount is the sum of its
  cart lines, prices being log-normal across products), then usually ``order.paid`` and
  ``order.shipped``; unpaid or out-of-stock orders are ``order.cancelled``; some buyers
  are ``user.upgraded``;
* late events: page views from the app synced after going offline, and shipments the
  warehouse reports in batches, reach the log later than their ``timestamp``;
* corrections: ``order.corrected`` fixes an order's amount; it is recorded later but
  effective from the order's own time (its ``timestamp`` is the order's), so
  ``state(order, as_of=...)`` shows the corrected amount while ``known_at`` before the
  correction shows the original.

Rows are in the order a live shop would append them (by arrival), so late rows sit
after events with later timestamps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allsource_lab.datasets.jsontext import integers, json_objects, money, quoted
from allsource_lab.datasets.shop_profile import ShopProfile
from allsource_lab.errors import InvalidArgument

__all__ = ["SHOP_EVENT_TYPES", "SHOP_START", "ShopProfile", "shop_events"]

SHOP_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SHOP_EVENT_TYPES = (
    "user.registered",
    "session.started",
    "page.viewed",
    "cart.added",
    "order.placed",
    "session.ended",
    "order.paid",
    "order.shipped",
    "order.cancelled",
    "user.upgraded",
    "order.corrected",
)

_S = 1_000_000  # microseconds per second
_HOUR = 3600 * _S
_DAY = 24 * _HOUR
_NEVER = np.iinfo(np.int64).max

_COUNTRIES = (("DE", 30), ("FR", 18), ("NL", 10), ("ES", 10), ("IT", 10), ("PL", 8),
              ("SE", 5), ("AT", 4), ("BE", 3), ("DK", 2))  # fmt: skip
_CHANNELS = (("organic", 35), ("search", 30), ("social", 15), ("referral", 10), ("ads", 10))
_REFERRERS = (("direct", 40), ("search", 30), ("social", 15), ("email", 10), ("ads", 5))
_METHODS = (("card", 55), ("paypal", 25), ("klarna", 12), ("apple_pay", 8))
_CARRIERS = (("DHL", 45), ("UPS", 20), ("DPD", 20), ("GLS", 15))
_UNPAID_REASONS = (("payment_failed", 60), ("customer_request", 40))
_CORRECTIONS = ("coupon_applied", "price_error", "tax_recalculated")


def shop_events(
    n_users: int = 1000,
    days: int = 30,
    seed: int = 0,
    start: dt.datetime = SHOP_START,
    profile: ShopProfile | None = None,
) -> pa.Table:
    """A shop's event history as an Arrow table, in the order it would be appended.

    Columns: ``event_type``, ``entity_id`` (``user-…``, ``session-…``, ``order-…``),
    ``payload`` and ``metadata`` (JSON text; metadata says the ``source`` and, for late
    events, ``late_by_s``) and ``timestamp`` (timestamp[us, UTC], the event time, in
    ``[start, start + days)``). With the default profile expect about 1.6 events per
    user per day (a million: ``n_users=20_000, days=30``, generated in about a second).
    The same arguments always give the same bytes; nothing reads the clock.

    Raises:
        InvalidArgument: ``n_users`` or ``days`` below 1, a negative seed, or a naive ``start``.

    >>> table = shop_events(n_users=50, days=7)
    >>> table.column_names
    ['event_type', 'entity_id', 'payload', 'timestamp', 'metadata']
    >>> table.equals(shop_events(n_users=50, days=7))
    True
    >>> table["event_type"][0].as_py(), table["entity_id"][0].as_py()
    ('user.registered', 'user-000001')
    """
    for name, value in (("n_users", n_users), ("days", days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(f"{name} must be an int >= 1, not {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgument(f"seed must be an int >= 0, not {seed!r}")
    if not isinstance(start, dt.datetime) or start.utcoffset() is None:
        raise InvalidArgument(f"start must be a timezone-aware datetime, not {start!r}")
    history = _History(n_users, days, seed, _epoch_us(start), profile or ShopProfile())
    return history.table()


def _epoch_us(when: dt.datetime) -> int:
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * _S + delta.microseconds


@dataclasses.dataclass(slots=True)
class _Part:
    """The rows of one event type, before they are merged in arrival order."""

    event_type: str
    entity_id: pa.Array
    payload: pa.Array
    timestamp: np.ndarray  # event time, us
    arrival: np.ndarray  # when the row reaches the log, us (> timestamp for late rows)
    metadata: pa.Array


@dataclasses.dataclass(slots=True)
class _Users:
    ids: pa.Array
    registered: np.ndarray  # us, ascending


@dataclasses.dataclass(slots=True)
class _Sessions:
    user: np.ndarray  # user number (0-based) per session
    started: np.ndarray  # us, ascending
    app: np.ndarray  # bool: from the app (else the web shop)


@dataclasses.dataclass(slots=True)
class _Orders:
    ids: pa.Array
    user: np.ndarray
    placed: np.ndarray  # us, ascending
    cents: np.ndarray  # amount as placed


class _Clock:
    """Event times that follow the shop's daily and weekly rhythm, hour by hour."""

    def __init__(self, start: int, days: int, profile: ShopProfile) -> None:
        hours = start // _HOUR + np.arange(days * 24, dtype=np.int64)
        weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday
        weight = np.asarray(profile.hourly)[hours % 24] * np.asarray(profile.weekly)[weekday]
        self.cdf = np.cumsum(weight) / weight.sum()
        self.start = start
        self.bins = len(hours)

    def between(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """A time in hour bins ``[lo, hi)`` per row (bins counted from the start)."""
        cdf_lo = np.where(lo > 0, self.cdf[np.maximum(lo - 1, 0)], 0.0)
        cdf_hi = self.cdf[hi - 1]
        u = cdf_lo + rng.random(len(lo)) * (cdf_hi - cdf_lo)
        picked = np.minimum(np.searchsorted(self.cdf, u, side="right"), hi - 1)
        offset = (rng.random(len(lo)) * _HOUR).astype(np.int64)
        return np.asarray(self.start + picked * _HOUR + offset, np.int64)

    def after(self, rng: np.random.Generator, earliest: np.ndarray) -> np.ndarray:
        """A time at or after ``earliest`` per row (may be past the end if it is)."""
        lo = np.clip((earliest - self.start) // _HOUR, 0, self.bins - 1)
        hi = np.full(len(earliest), self.bins, np.int64)
        return np.asarray(np.maximum(self.between(rng, lo, hi), earliest), np.int64)


class _History:
    """One generated history: each stage draws from the same generator in a fixed order."""

    def __init__(self, n_users: int, days: int, seed: int, start: int, p: ShopProfile) -> None:
        self.rng = np.random.default_rng(seed)
        self.p = p
        self.start = start
        self.end = start + days * _DAY
        self.clock = _Clock(start, days, p)
        self.parts: list[_Part] = []
        self.n_users = n_users

    # -- drawing ------------------------------------------------------------------------

    def lognormal(self, median: float, sigma: float, n: int) -> np.ndarray:
        return median * np.exp(sigma * self.rng.standard_normal(n))

    def delay_us(self, median_s: float, n: int, sigma: float = 1.0) -> np.ndarray:
        """Log-normal delays of at least one second, in microseconds."""
        return np.maximum((self.lognormal(median_s, sigma, n) * _S).astype(np.int64), _S)

    def choice(self, options: tuple[tuple[str, int], ...], n: int) -> pa.Array:
        weights = np.cumsum([w for _, w in options], dtype=np.float64)
        picked = np.searchsorted(weights / weights[-1], self.rng.random(n), side="right")
        names = pa.array([name for name, _ in options])
        return names.take(pa.array(np.minimum(picked, len(options) - 1)))

    def emit(
        self,
        event_type: str,
        entity_id: pa.Array,
        fields: list[tuple[str, pa.Array]],
        timestamp: np.ndarray,
        source: pa.Array | str,
        arrival: np.ndarray | None = None,
    ) -> None:
        n = len(timestamp)
        if n == 0:
            return
        sources = quoted(pa.repeat(source, n) if isinstance(source, str) else source)
        metadata = json_objects([("source", sources)])
        if arrival is None:
            arrival = timestamp
        else:
            late = arrival > timestamp
            late_meta = json_objects(
                [("source", sources), ("late_by_s", integers((arrival - timestamp) // _S))]
            )
            metadata = pc.if_else(pa.array(late), late_meta, metadata)
        payload = json_objects(fields)
        self.parts.append(_Part(event_type, entity_id, payload, timestamp, arrival, metadata))

    # -- stages -------------------------------------------------------------------------

    def table(self) -> pa.Table:
        users = self.users()
        sessions = self.sessions(users)
        orders = self.views_and_orders(users, sessions)
        self.after_checkout(users, orders)
        parts = self.parts
        arrival = np.concatenate([part.arrival for part in parts])
        # Stable: rows arriving at the same microsecond keep the causal order of the parts.
        order = pa.array(np.argsort(arrival, kind="stable"))

        def column(values: list[pa.Array]) -> pa.Array:
            return pa.concat_arrays(values).take(order)

        timestamps = pa.array(np.concatenate([part.timestamp for part in parts]))
        return pa.table(
            {
                "event_type": column(
                    [pa.repeat(part.event_type, len(part.arrival)) for part in parts]
                ),
                "entity_id": column([part.entity_id for part in parts]),
                "payload": column([part.payload for part in parts]),
                "timestamp": timestamps.cast(pa.timestamp("us", tz="UTC")).take(order),
                "metadata": column([part.metadata for part in parts]),
            }
        )

    def users(self) -> _Users:
        n, rng, clock = self.n_users, self.rng, self.clock
        launch = rng.random(n) < self.p.launch_fraction
        registered = np.empty(n, np.int64)
        first_day = min(24, clock.bins)
        registered[launch] = clock.between(
            rng, np.zeros(int(launch.sum()), np.int64), np.full(int(launch.sum()), first_day)
        )
        registered[~launch] = clock.after(rng, np.full(int((~launch).sum()), self.start))
        registered.sort()  # user numbers follow registration order
        ids = _ids("user-", np.arange(1, n + 1), 6)
        app = rng.random(n) < self.p.app_share
        self.emit(
            "user.registered",
            ids,
            [
                ("email", quoted(pc.binary_join_element_wise(ids, "@example.com", ""))),
                ("country", quoted(self.choice(_COUNTRIES, n))),
                ("channel", quoted(self.choice(_CHANNELS, n))),
                ("plan", quoted(pa.repeat("free", n))),
            ],
            registered,
            _device(app),
        )
        return _Users(ids, registered)

    def sessions(self, users: _Users) -> _Sessions:
        p, rng = self.p, self.rng
        registered = users.registered
        rate = self.lognormal(p.sessions_per_day_median, p.sessions_per_day_sigma, self.n_users)
        active_days = (self.end - registered) / _DAY
        counts = rng.poisson(rate * active_days)
        user = np.repeat(np.arange(self.n_users), counts)
        started = self.clock.after(rng, registered[user] + _S)
        keep = started < self.end
        order = np.argsort(started[keep], kind="stable")  # session numbers follow start
        user, started = user[keep][order], started[keep][order]
        app = rng.random(len(user)) < p.app_share
        return _Sessions(user, started, app)

    def views_and_orders(self, users: _Users, sessions: _Sessions) -> _Orders:
        p, rng = self.p, self.rng
        s_user, started, app = sessions.user, sessions.started, sessions.app
        n_sessions = len(started)
        session_ids = _ids("session-", np.arange(1, n_sessions + 1), 7)
        s_user_ids = users.ids.take(pa.array(s_user))
        self.emit(
            "session.started",
            session_ids,
            [
                ("user_id", quoted(s_user_ids)),
                ("device", quoted(_device(app))),
                ("referrer", quoted(self.choice(_REFERRERS, n_sessions))),
            ],
            started,
            _device(app),
        )

        # Page views: a geometric number per session, log-normal gaps between them.
        pages = rng.geometric(1.0 / p.pages_per_session_mean, n_sessions)
        first = np.cumsum(pages) - pages
        last = first + pages - 1
        view_session = np.repeat(np.arange(n_sessions), pages)
        gaps = self.lognormal(p.page_gap_median_s, p.page_gap_sigma, len(view_session))
        cumulative = np.cumsum(gaps)
        since_start = cumulative - np.repeat(cumulative[first] - gaps[first], pages)
        viewed = started[view_session] + (since_start * _S).astype(np.int64)
        tail = self.delay_us(2 * p.page_gap_median_s, n_sessions)
        checkout = viewed[last] + tail // 2
        ended = viewed[last] + tail
        page_number = np.arange(len(view_session)) - first[view_session] + 1

        # Products by Zipf-like popularity; ranks are shuffled onto SKUs.
        ranks = np.arange(1, p.products + 1, dtype=np.float64) ** -p.popularity_exponent
        popularity = np.cumsum(ranks) / ranks.sum()
        sku_of_rank = rng.permutation(p.products)
        rank = np.minimum(np.searchsorted(popularity, rng.random(len(viewed))), p.products - 1)
        product = sku_of_rank[rank]
        price = np.maximum(
            np.round(self.lognormal(p.price_median_cents, p.price_sigma, p.products)), 99
        ).astype(np.int64)
        skus = _ids("sku-", np.arange(1, p.products + 1), 5)

        late = app[view_session] & (rng.random(len(viewed)) < p.late_view_rate)
        view_arrival = viewed + np.where(
            late, self.delay_us(p.late_view_delay_median_s, len(viewed), 1.2), 0
        )
        keep = viewed < self.end
        v_session = view_session[keep]
        self.emit(
            "page.viewed",
            session_ids.take(pa.array(v_session)),
            [
                ("user_id", quoted(s_user_ids.take(pa.array(v_session)))),
                ("product_id", quoted(skus.take(pa.array(product[keep])))),
                ("page", integers(page_number[keep])),
            ],
            viewed[keep],
            _device(app[v_session]),
            view_arrival[keep],
        )

        # Cart adds: between a view and the next view (or the checkout moment).
        following = np.empty_like(viewed)
        following[:-1] = viewed[1:]
        following[last] = checkout
        carted = rng.random(len(viewed)) < p.cart_rate
        quantity = 1 + (rng.random(len(viewed)) < 0.2) + (rng.random(len(viewed)) < 0.05)
        cart_time = viewed + np.maximum(
            ((following - viewed) * rng.random(len(viewed))).astype(np.int64), 1
        )
        carted &= cart_time < self.end
        c_session = view_session[carted]
        c_price = price[product[carted]]
        self.emit(
            "cart.added",
            session_ids.take(pa.array(c_session)),
            [
                ("user_id", quoted(s_user_ids.take(pa.array(c_session)))),
                ("product_id", quoted(skus.take(pa.array(product[carted])))),
                ("quantity", integers(quantity[carted])),
                ("unit_price", money(c_price)),
            ],
            cart_time[carted],
            _device(app[c_session]),
        )

        # Orders: some sessions with a cart check out; the amount is their cart lines.
        lines = np.bincount(c_session, minlength=n_sessions)
        cents = np.bincount(c_session, c_price * quantity[carted], n_sessions).astype(np.int64)
        items = np.bincount(c_session, quantity[carted], n_sessions).astype(np.int64)
        converts = (lines > 0) & (rng.random(n_sessions) < p.checkout_rate)
        converts &= checkout < self.end
        o_session = np.flatnonzero(converts)
        o_session = o_session[np.argsort(checkout[o_session], kind="stable")]
        order_ids = _ids("order-", np.arange(1, len(o_session) + 1), 7)
        placed = checkout[o_session]
        self.emit(
            "order.placed",
            order_ids,
            [
                ("user_id", quoted(s_user_ids.take(pa.array(o_session)))),
                ("session_id", quoted(session_ids.take(pa.array(o_session)))),
                ("items", integers(items[o_session])),
                ("amount", money(cents[o_session])),
                ("currency", quoted(pa.repeat("EUR", len(o_session)))),
                ("status", quoted(pa.repeat("placed", len(o_session)))),
            ],
            placed,
            _device(app[o_session]),
        )

        done = ended < self.end
        self.emit(
            "session.ended",
            session_ids.filter(pa.array(done)),
            [
                ("pages", integers(pages[done])),
                ("duration_s", integers((ended - started)[done] // _S)),
                ("converted", pa.array(np.where(converts[done], "true", "false"))),
            ],
            ended[done],
            _device(app[done]),
        )
        return _Orders(order_ids, s_user[o_session], placed, cents[o_session])

    def after_checkout(self, users: _Users, orders: _Orders) -> None:
        p, rng, end = self.p, self.rng, self.end
        ids, placed, cents = orders.ids, orders.placed, orders.cents
        n = len(placed)

        paying = rng.random(n) < p.pay_rate
        paid_at = placed + self.delay_us(p.pay_delay_median_s, n)
        paid = paying & (paid_at < end)
        self.emit(
            "order.paid",
            ids.filter(pa.array(paid)),
            [
                ("status", quoted(pa.repeat("paid", int(paid.sum())))),
                ("method", quoted(self.choice(_METHODS, n).filter(pa.array(paid)))),
            ],
            paid_at[paid],
            "payments",
        )

        in_stock = rng.random(n) < p.ship_rate
        shipped_at = paid_at + self.delay_us(p.ship_delay_median_h * 3600, n, 0.6)
        shipped = paid & in_stock & (shipped_at < end)
        late = rng.random(n) < p.late_ship_rate
        reported = shipped_at + np.where(
            late, self.delay_us(p.late_ship_delay_median_h * 3600, n, 0.5), 0
        )
        self.emit(
            "order.shipped",
            ids.filter(pa.array(shipped)),
            [
                ("status", quoted(pa.repeat("shipped", int(shipped.sum())))),
                ("carrier", quoted(self.choice(_CARRIERS, n).filter(pa.array(shipped)))),
            ],
            shipped_at[shipped],
            "warehouse",
            reported[shipped],
        )

        # Unpaid orders mostly lapse; paid ones out of stock are cancelled and refunded.
        gives_up = ~paying & (rng.random(n) < p.cancel_unpaid_rate)
        unpaid_reason = self.choice(_UNPAID_REASONS, n)
        cancelled_at = np.where(
            gives_up,
            placed + self.delay_us(p.cancel_delay_median_h * 3600, n),
            paid_at + self.delay_us(p.cancel_delay_median_h * 3600, n),
        )
        cancelled = (gives_up | (paid & ~in_stock)) & (cancelled_at < end)
        reason = pc.if_else(pa.array(gives_up), unpaid_reason, "out_of_stock")
        self.emit(
            "order.cancelled",
            ids.filter(pa.array(cancelled)),
            [
                ("status", quoted(pa.repeat("cancelled", int(cancelled.sum())))),
                ("reason", quoted(reason.filter(pa.array(cancelled)))),
            ],
            cancelled_at[cancelled],
            pc.if_else(pa.array(gives_up), "payments", "warehouse").filter(pa.array(cancelled)),
        )

        # Upgrades: some buyers move to the paid plan a few days after their first payment.
        first_paid = np.full(self.n_users, _NEVER, np.int64)
        np.minimum.at(first_paid, orders.user[paid], paid_at[paid])
        upgrades = (first_paid < _NEVER) & (rng.random(self.n_users) < p.upgrade_rate)
        delay = self.delay_us(p.upgrade_delay_median_days * 86_400, self.n_users)
        upgraded_at = np.where(upgrades, first_paid, 0) + delay
        upgrades &= upgraded_at < end
        count = int(upgrades.sum())
        upgraded_at = upgraded_at[upgrades]
        order = np.argsort(upgraded_at, kind="stable")
        self.emit(
            "user.upgraded",
            users.ids.filter(pa.array(upgrades)).take(pa.array(order)),
            [
                ("plan", quoted(pa.repeat("plus", count))),
                ("previous_plan", quoted(pa.repeat("free", count))),
            ],
            upgraded_at[order],
            "billing",
        )

        # Corrections: recorded a day or so later, effective from the order's own time.
        corrected = rng.random(n) < p.correction_rate
        kind = rng.integers(0, len(_CORRECTIONS), n)
        # A 10% coupon, a mistyped price (+-20%), or tax recalculated (+7%).
        factor = np.select(
            [kind == 0, kind == 1], [np.full(n, 0.9), rng.uniform(0.8, 1.2, n)], 1.07
        )
        fixed = np.round(cents * factor).astype(np.int64)
        recorded = placed + self.delay_us(p.correction_delay_median_h * 3600, n)
        reasons = pa.array(_CORRECTIONS).take(pa.array(kind))
        mask = pa.array(corrected)
        self.emit(
            "order.corrected",
            ids.filter(mask),
            [
                ("amount", money(fixed[corrected])),
                ("previous_amount", money(cents[corrected])),
                ("reason", quoted(reasons.filter(mask))),
            ],
            placed[corrected],
            "backoffice",
            recorded[corrected],
        )


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded number, e.g. ``user-000042``."""
    digits = pc.utf8_lpad(integers(numbers), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


_DEVICES = pa.array(["web", "app"])


def _device(app: np.ndarray) -> pa.Array:
    return _DEVICES.take(pa.array(app.astype(np.int8)))
