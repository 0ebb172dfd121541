"""allsource_lab.eventsourcing.aggregate_at: an application's aggregates at a moment.

The reference is the application's own rebuild: ``app.repository.get(id, version=v)``,
``v`` being the last version whose event time is at most ``as_of`` among the events the
store had recorded by ``known_at``. Histories are random (deposits, withdrawals, renames
in saves of several events) over aggregates whose state is computed from the events, so
the store's merge-patch fold could not give it; each event's time is set by a clock the
test moves, forwards and sometimes back, and the store's recorded times are its own.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab.eventsourcing import (
    AllSourceFactory,
    AllSourceTrackingRecorder,
    aggregate_at,
    aggregates_at,
)

MODULE = "allsource_lab.eventsourcing"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# The event time every new domain event takes (the library's clock is the wall clock).
_clock = [START]


class Account(Aggregate):
    """A bank account whose balance is computed: its events carry amounts, not balances."""

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return _clock[0]

    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0
        self.moves = 0

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        self.balance += amount
        self.moves += 1

    @event("Withdrawn")
    def withdraw(self, amount: int) -> None:
        self.balance -= amount
        self.moves += 1

    @event("Renamed")
    def rename(self, owner: str) -> None:
        self.owner = owner


class LateAccount(Account):
    """An account whose first version is 3, not 1: the store keeps its versions in metadata."""

    INITIAL_VERSION = 3


def application(path: Path | None = None, **env: str) -> Application[UUID]:
    settings = {"PERSISTENCE_MODULE": MODULE, **env}
    if path is not None:
        settings["ALLSOURCE_PATH"] = str(path)
    return Application(env=settings)


def store_of(app: Application[UUID]) -> asl.EventStore:
    factory = app.factory
    assert isinstance(factory, AllSourceFactory)
    return factory.store()


@pytest.fixture
def app() -> Iterator[Application[UUID]]:
    application_ = application()
    yield application_
    application_.close()


# -- random histories against the repository's rebuild --------------------------------------

_OP = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 1000)),
    st.tuples(st.just("withdraw"), st.integers(0, 1000)),
    st.tuples(st.just("rename"), st.sampled_from(["ada", "bob", "cy"])),
)
# Minutes the clock moves before an event: mostly on, sometimes not at all (two events at
# one moment), sometimes back (a back-dated event).
_STEP = st.one_of(st.integers(0, 30), st.integers(-90, -1))
_SAVE = st.tuples(
    st.integers(0, 2),  # which account
    st.lists(st.tuples(_STEP, _OP), min_size=1, max_size=4),  # its events, one save
    st.booleans(),  # checkpoint after the save (folder stores: events in segments too)
)


def _reference(
    app: Application[UUID],
    account_id: UUID,
    times: list[tuple[datetime, datetime]],
    as_of: datetime | None,
    known_at: datetime | None,
) -> Any:
    """``repository.get`` at the last version visible at the moment; None: none is.

    ``times`` holds each event's (event time, recorded time) in version order, from the
    aggregate's first version (its class's ``INITIAL_VERSION``).
    """
    visible = [
        index
        for index, (stamp, recorded) in enumerate(times)
        if (as_of is None or stamp <= as_of) and (known_at is None or recorded <= known_at)
    ]
    if not visible:
        return None
    first = type(app.repository.get(account_id)).INITIAL_VERSION
    return app.repository.get(account_id, version=first + max(visible))


def _check_history(app: Application[UUID], ids: list[UUID]) -> None:
    store = store_of(app)
    everyone: set[datetime] = set()
    histories: dict[UUID, list[tuple[datetime, datetime]]] = {}
    for account_id in ids:
        times = [(e.timestamp, e.recorded_at) for e in store.events(entity_id=str(account_id))]
        histories[account_id] = times
        everyone.update(stamp for stamp, _ in times)
    recorded = sorted({r for times in histories.values() for _, r in times})
    tick = timedelta(microseconds=1)
    moments = sorted({m + d for m in everyone for d in (-tick, timedelta(0))})
    for as_of in [None, *moments]:
        for known_at in [None, recorded[len(recorded) // 2], recorded[0] - tick]:
            expected = {
                account_id: _reference(app, account_id, times, as_of, known_at)
                for account_id, times in histories.items()
            }
            for account_id, want in expected.items():
                if want is None:
                    with pytest.raises(asl.NotFound):
                        aggregate_at(app, account_id, as_of=as_of, known_at=known_at)
                else:
                    got = aggregate_at(app, account_id, as_of=as_of, known_at=known_at)
                    assert got == want, (as_of, known_at)
            everything = aggregates_at(app, as_of=as_of, known_at=known_at)
            assert everything == {k: v for k, v in expected.items() if v is not None}


def _play(app: Application[UUID], saves: list[tuple[int, list[Any], bool]]) -> list[UUID]:
    """Save three accounts (the third one starting at version 3), then ``saves``."""
    store = store_of(app)
    _clock[0] = START
    accounts: list[Account] = [Account("a0"), Account("a1"), LateAccount("a2")]
    app.save(*accounts)
    for which, events, checkpoint in saves:
        account = accounts[which]
        for minutes, (op, arg) in events:
            _clock[0] += timedelta(minutes=minutes)
            getattr(account, op)(arg)
        app.save(account)
        if checkpoint:
            store.checkpoint()
    return [a.id for a in accounts]


@settings(max_examples=25, deadline=None)
@given(saves=st.lists(_SAVE, max_size=10))
def test_an_aggregate_at_a_moment_is_the_repository_get_of_its_last_version_by_then(
    saves: list[tuple[int, list[Any], bool]],
) -> None:
    app = application()
    try:
        ids = _play(app, saves)
        _check_history(app, ids)
    finally:
        app.close()


@settings(max_examples=8, deadline=None)
@given(saves=st.lists(_SAVE, max_size=8))
def test_an_aggregate_at_a_moment_is_the_same_from_a_reopened_folder(
    saves: list[tuple[int, list[Any], bool]],
) -> None:
    where = Path(tempfile.mkdtemp(prefix="asl-es-tt-"))
    try:
        app = application(where / "bank.events")
        ids = _play(app, saves)
        app.close()
        app = application(where / "bank.events")
        try:
            _check_history(app, ids)
        finally:
            app.close()
    finally:
        shutil.rmtree(where, ignore_errors=True)


# -- behaviour at the edges ----------------------------------------------------------------


def test_the_store_merge_patch_fold_is_not_the_computed_state_but_aggregate_at_is(
    app: Application[UUID],
) -> None:
    _clock[0] = START
    account = Account("ada")
    for minutes, amount in ((10, 100), (20, 50)):
        _clock[0] = START + timedelta(minutes=minutes)
        account.deposit(amount)
    app.save(account)
    at = START + timedelta(minutes=25)
    folded = store_of(app).state(str(account.id), as_of=at)
    assert "balance" not in folded and folded["amount"] == 50  # the last event's attributes
    rebuilt = aggregate_at(app, account.id, as_of=at)
    assert (rebuilt.balance, rebuilt.version) == (150, 3)
    # A str id reads the same aggregate as its UUID.
    assert aggregate_at(app, str(account.id), as_of=at) == rebuilt


def test_an_id_with_no_events_is_not_found_and_says_what_to_check(
    app: Application[UUID],
) -> None:
    app.save(Account("ada"))
    with pytest.raises(asl.NotFound, match=r"no event of aggregate .*ALLSOURCE_PATH"):
        aggregate_at(app, uuid4())


def test_a_moment_before_the_first_event_is_not_found_and_names_the_first_times(
    app: Application[UUID],
) -> None:
    _clock[0] = START
    account = Account("ada")
    app.save(account)
    before = START - timedelta(seconds=1)
    with pytest.raises(asl.NotFound, match=r"had no event by as_of=.*first event's time is 2026"):
        aggregate_at(app, account.id, as_of=before)
    recorded = store_of(app).events(entity_id=str(account.id)).first(1)[0].recorded_at
    with pytest.raises(asl.NotFound, match="known_at="):
        aggregate_at(app, account.id, known_at=recorded - timedelta(microseconds=1))
    assert aggregates_at(app, as_of=before) == {}


def test_bad_arguments_are_typed_errors(app: Application[UUID]) -> None:
    account = Account("ada")
    app.save(account)
    with pytest.raises(asl.InvalidEvent):
        aggregate_at(app, account.id, as_of=datetime(2026, 1, 1))  # naive
    with pytest.raises(asl.InvalidArgument, match="UUID or a str"):
        aggregate_at(app, 7)  # type: ignore[arg-type]
    with pytest.raises(asl.InvalidArgument, match="tracking records"):
        aggregate_at(app, "eventsourcing.tracking:Bank")
    popo = Application[UUID]()
    with pytest.raises(asl.InvalidArgument, match="PERSISTENCE_MODULE=allsource_lab"):
        aggregate_at(popo, account.id)
    with pytest.raises(asl.InvalidArgument, match="PERSISTENCE_MODULE=allsource_lab"):
        aggregates_at(popo)


def test_wrapped_states_travel_in_recorded_time() -> None:
    """A compressed state has no event time the store can read: its event time is when
    the store recorded it, and ``known_at`` travels in the same time."""
    app = application(COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor")
    try:
        account = Account("ada")
        app.save(account)
        account.deposit(5)
        app.save(account)
        events = list(store_of(app).events(entity_id=str(account.id)))
        assert [e.timestamp for e in events] == [e.recorded_at for e in events]
        for e in events:
            expected = app.repository.get(account.id, version=e.version)
            assert aggregate_at(app, account.id, as_of=e.timestamp) == expected
            assert aggregate_at(app, account.id, known_at=e.recorded_at) == expected
    finally:
        app.close()


def test_aggregates_at_skips_tracking_records_and_keys_by_the_application_ids(
    tmp_path: Path,
) -> None:
    app = application(tmp_path / "process.events", ORIGINATOR_ID_TYPE="text")
    try:
        account = Account("ada")
        account.deposit(3)
        app.save(account)
        AllSourceTrackingRecorder(store_of(app)).insert_tracking(Tracking("upstream", 4))
        assert len(store_of(app).events()) == 3
        found = aggregates_at(app)
        assert list(found) == [str(account.id)]
        assert found[str(account.id)].balance == 3
    finally:
        app.close()
