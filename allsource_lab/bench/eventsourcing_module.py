"""The ``eventsourcing`` library's applications on our persistence module, beside its own
(``--only eventsourcing``): ``app.save()`` of one event per save, of ten events per save
(one atomic batch), and ``repository.get()`` of a 100-event aggregate, each on
``allsource_lab.eventsourcing`` (a folder store at default settings, and in memory), on the
library's SQLite module (a file) and on its POPO module (in memory).

Every row runs the same application code on the same aggregate (``order_aggregate``);
only ``PERSISTENCE_MODULE`` and its settings change. Saves are timed without the
application's ``close()`` for every module alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from allsource_lab.bench.common import (
    PER_ENTITY,
    Figure,
    Sizes,
    order_aggregate,
    order_payload,
    repeat,
    scratch,
)
from allsource_lab.bench.peers import eventsourcing_save_rate
from allsource_lab.bench.reads import median_us

__all__ = ["ES_FIGURES", "MODULES", "bench_eventsourcing_module", "get_us", "save_many_rate"]

# The rows' modules, by the suffix of their figure keys.
MODULES = ("allsource", "allsource_memory", "sqlite", "popo")
# Every figure this group reports.
ES_FIGURES = tuple(f"es_{what}_{m}" for what in ("save", "save10", "get100") for m in MODULES)


def _env(module: str, folder: Path) -> dict[str, str]:
    """A fresh application's environment on ``module``, its files in ``folder``."""
    if module == "allsource":
        path = scratch(folder, "es-allsource")
        return {"PERSISTENCE_MODULE": "allsource_lab.eventsourcing", "ALLSOURCE_PATH": str(path)}
    if module == "allsource_memory":
        return {"PERSISTENCE_MODULE": "allsource_lab.eventsourcing"}
    if module == "sqlite":
        db = scratch(folder, "es-sqlite").with_suffix(".db")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def save_many_rate(env: dict[str, str], saves: int, per_save: int = 10) -> float:
    """Events/s of ``Application.save`` with ``per_save`` new events of one aggregate."""
    from eventsourcing.application import Application

    order_cls = order_aggregate()
    app: Application[Any] = Application(env=env)
    orders = [order_cls("sku-00000") for _ in range(100)]
    app.save(*orders)
    payloads = [order_payload(i) for i in range(1000)]
    start = time.perf_counter()
    for i in range(saves):
        order = orders[i % 100]
        for k in range(per_save):
            order.change(**payloads[(i + k) % 1000])
        app.save(order)
    seconds = time.perf_counter() - start
    app.close()
    return saves * per_save / seconds


def get_us(env: dict[str, str], reopen: bool, gets: int = 400) -> float:
    """Median µs of ``repository.get`` of a 100-event aggregate (20 of them, ``gets`` gets).

    ``reopen``: the gets run on a new application over the same files (a folder store
    then reads its sealed segments, as after a kernel restart).
    """
    from eventsourcing.application import Application

    order_cls = order_aggregate()
    app: Application[Any] = Application(env=env)
    orders = [order_cls("sku-00000") for _ in range(20)]
    for i in range(PER_ENTITY - 1):
        for order in orders:
            order.change(**order_payload(i))
    app.save(*orders)
    if reopen:
        app.close()
        app = Application(env=env)
    ids = [orders[i % 20].id for i in range(gets)]
    get = cast(Callable[[Any], object], app.repository.get)
    get(ids[0])  # the first read of a reopened store brings its read side up
    us = median_us(ids, get)
    app.close()
    return us


def bench_eventsourcing_module(sizes: Sizes, folder: Path) -> list[Figure]:
    repeats = min(sizes.repeats, 3)
    saves = sizes.peer_saves
    gets = max(saves // 50, 20)  # 400 at full size; a get costs ~5-10 ms on every module
    figures = []
    for module in MODULES:

        def save_one(module: str = module) -> float:
            return eventsourcing_save_rate(_env(module, folder), saves)

        def save_ten(module: str = module) -> float:
            return save_many_rate(_env(module, folder), saves // 10)

        def get(module: str = module) -> float:
            return get_us(_env(module, folder), module in ("allsource", "sqlite"), gets)

        figures.append(Figure(f"es_save_{module}", repeat(repeats, save_one)))
        figures.append(Figure(f"es_save10_{module}", repeat(repeats, save_ten)))
        figures.append(Figure(f"es_get100_{module}", repeat(repeats, get)))
    order = {key: i for i, key in enumerate(ES_FIGURES)}
    return sorted(figures, key=lambda f: order[f.key])
