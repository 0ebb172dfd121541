"""allsource_lab.eventsourcing: the eventsourcing library's own recorder suites, and more.

The library ships abstract test cases for every persistence module
(``eventsourcing.tests.persistence``); each runs here, unmodified, over an in-memory and
a folder store. Beside them: applications that save and rebuild aggregates through the
module, time travel in the store against the application's own ``repository.get``,
states the library encodes in other ways, and a store reopened in a new process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    DataError,
    InfrastructureFactory,
    IntegrityError,
    JSONTranscoder,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.system import Leader, ProcessApplication, SingleThreadedRunner, System
from eventsourcing.tests import persistence as suites
from eventsourcing.utils import Environment
from hypothesis import given, settings
from hypothesis import strategies as st

import allsource_lab as asl
from allsource_lab.eventsourcing import (
    AllSourceAggregateRecorder,
    AllSourceApplicationRecorder,
    AllSourceFactory,
    AllSourceProcessRecorder,
    AllSourceSnapshotRecorder,
    AllSourceTrackingRecorder,
)

MODULE = "allsource_lab.eventsourcing"


class _Stores:
    """A new store for each recorder: in memory, or in a folder of its own."""

    folder = False

    def open_store(self) -> asl.EventStore:
        if self.folder:
            where = tempfile.mkdtemp(prefix="asl-es-")
            self.addCleanup(shutil.rmtree, where, True)  # type: ignore[attr-defined]
            store = asl.open(Path(where) / "app.events")
        else:
            store = asl.open()
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        return store


# -- the library's suites, unmodified ------------------------------------------------------


class TestAggregateRecorderMemory(_Stores, suites.AggregateRecorderTestCase):
    def create_recorder(self) -> AllSourceAggregateRecorder:
        return AllSourceAggregateRecorder(self.open_store())


class TestAggregateRecorderFolder(TestAggregateRecorderMemory):
    folder = True


class TestSnapshotRecorderMemory(_Stores, suites.AggregateRecorderTestCase):
    def create_recorder(self) -> AllSourceSnapshotRecorder:
        return AllSourceSnapshotRecorder(self.open_store())


class TestSnapshotRecorderFolder(TestSnapshotRecorderMemory):
    folder = True


class TestApplicationRecorderMemory(_Stores, suites.ApplicationRecorderTestCase):
    def create_recorder(self) -> AllSourceApplicationRecorder:
        return AllSourceApplicationRecorder(self.open_store())

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestApplicationRecorderFolder(TestApplicationRecorderMemory):
    folder = True


class TestNonInterleavingMemory(_Stores, suites.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> AllSourceApplicationRecorder:
        return AllSourceApplicationRecorder(self.open_store())


class TestNonInterleavingFolder(TestNonInterleavingMemory):
    folder = True


class TestTrackingRecorderMemory(_Stores, suites.TrackingRecorderTestCase):
    def create_recorder(self) -> AllSourceTrackingRecorder:
        return AllSourceTrackingRecorder(self.open_store())


class TestTrackingRecorderFolder(TestTrackingRecorderMemory):
    folder = True


class TestProcessRecorderMemory(_Stores, suites.ProcessRecorderTestCase):
    def create_recorder(self) -> AllSourceProcessRecorder:
        return AllSourceProcessRecorder(self.open_store())


class TestProcessRecorderFolder(TestProcessRecorderMemory):
    folder = True


class CustomTrackingRecorder(AllSourceTrackingRecorder):
    """A tracking recorder subclass, as a projection's materialised view would be."""


class TestFactoryMemory(suites.InfrastructureFactoryTestCase[AllSourceFactory]):
    folder = False

    def setUp(self) -> None:
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = MODULE
        if self.folder:
            where = tempfile.mkdtemp(prefix="asl-es-")
            self.addCleanup(shutil.rmtree, where, True)
            self.env[AllSourceFactory.ALLSOURCE_PATH] = str(Path(where) / "app.events")
        super().setUp()

    def expected_factory_class(self) -> type[AllSourceFactory]:
        return AllSourceFactory

    def expected_aggregate_recorder_class(self) -> type[AllSourceAggregateRecorder]:
        return AllSourceAggregateRecorder

    def expected_application_recorder_class(self) -> type[AllSourceApplicationRecorder]:
        return AllSourceApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[AllSourceTrackingRecorder]:
        return AllSourceTrackingRecorder

    def tracking_recorder_subclass(self) -> type[AllSourceTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[AllSourceProcessRecorder]:
        return AllSourceProcessRecorder


class TestFactoryFolder(TestFactoryMemory):
    folder = True


# -- applications --------------------------------------------------------------------------


class Account(Aggregate):
    """Each event's attributes are the fields its method sets, named alike: the merge
    patches of the payloads then fold into the aggregate's own attributes."""

    @event("Opened")
    def __init__(self, owner: str, balance: int) -> None:
        self.owner = owner
        self.balance = balance

    @event("Deposited")
    def deposit(self, balance: int) -> None:
        self.balance = balance

    @event("Renamed")
    def rename(self, owner: str) -> None:
        self.owner = owner

    @event("Tagged")
    def tag(self, tags: list[str]) -> None:
        self.tags = tags

    @event("Priced")
    def price(self, amount: Decimal, currency: str) -> None:
        self.amount = amount
        self.currency = currency


def application(path: Path | None = None, **env: str) -> Application[UUID]:
    settings = {"PERSISTENCE_MODULE": MODULE, **env}
    if path is not None:
        settings["ALLSOURCE_PATH"] = str(path)
    return Application(env=settings)


def store_of(app: Application[UUID]) -> asl.EventStore:
    factory = app.factory
    assert isinstance(factory, AllSourceFactory)
    return factory.store()


def test_an_application_saves_and_rebuilds_its_aggregates_in_the_store() -> None:
    app = application()
    account = Account("ada", 10)
    account.deposit(25)
    account.rename("ada l.")
    recordings = app.save(account)
    store = store_of(app)
    # One save of three events is one batch: three sequences, versions 1 to 3.
    assert [r.notification.id for r in recordings] == [1, 2, 3]
    frame = store.events(entity_id=str(account.id)).to_pandas()
    assert frame["version"].tolist() == [1, 2, 3]
    assert frame["event_type"].tolist() == [
        f"{__name__}:Account.Opened",
        f"{__name__}:Account.Deposited",
        f"{__name__}:Account.Renamed",
    ]
    # The payload is the event's attributes, as the library's transcoder wrote them.
    assert frame["payload"][1]["balance"] == 25
    copy = app.repository.get(account.id)
    assert (copy.owner, copy.balance, copy.version) == ("ada l.", 25, 3)
    # The event time is the event's own timestamp.
    assert store.events(entity_id=str(account.id)).first(1)[0].timestamp == account.created_on
    app.close()


def test_a_version_clash_is_the_library_integrity_error_and_writes_nothing() -> None:
    app = application()
    account = Account("ada", 1)
    app.save(account)
    first = app.repository.get(account.id)
    second = app.repository.get(account.id)
    first.deposit(2)
    app.save(first)
    second.deposit(3)
    second.rename("bob")
    with pytest.raises(IntegrityError):
        app.save(second)
    assert app.repository.get(account.id).balance == 2
    assert len(store_of(app).events(entity_id=str(account.id))) == 2
    app.close()


@pytest.mark.parametrize(
    "env",
    [
        {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"},
        {"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher"},
    ],
    ids=["compressed", "encrypted"],
)
def test_states_that_are_not_json_are_kept_losslessly(env: dict[str, str]) -> None:
    if "CIPHER_TOPIC" in env:
        from eventsourcing.cipher import AESCipher

        env = {**env, "CIPHER_KEY": AESCipher.create_key(16)}
    app = application(**env)
    account = Account("ada", 10)
    account.tag(["x", "y"])
    app.save(account)
    stored = list(app.recorder.select_events(account.id))
    payloads = store_of(app).events(entity_id=str(account.id)).to_pandas()
    assert all(set(p) == {"base64"} for p in payloads["payload"])
    assert all(m == {"state": "base64"} for m in payloads["metadata"])
    again = app.mapper.to_domain_event(stored[1])
    assert again.tags == ["x", "y"]  # type: ignore[attr-defined]
    assert app.repository.get(account.id).tags == ["x", "y"]
    app.close()


def test_a_state_the_store_cannot_take_as_json_is_wrapped() -> None:
    store = asl.open()
    recorder = AllSourceAggregateRecorder(store, originator_id_type="text")
    deep = b'{"a":' * 70 + b"1" + b"}" * 70  # deeper than max_json_depth
    texts = [b'{"nan": NaN}', b'{"a": "\xff"}', deep, b"[1,2]", b""]
    events = [StoredEvent("x", i + 1, "t", state) for i, state in enumerate(texts)]
    recorder.insert_events(events)
    assert [e.state for e in recorder.select_events("x")] == texts
    kinds = store.events(entity_id="x").to_pandas()["metadata"].tolist()
    assert kinds == [{"state": "base64"}] * len(texts)


def test_a_json_state_the_store_refuses_after_all_is_wrapped_and_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from allsource_lab.eventsourcing import streams

    def trusting(state: bytes, max_bytes: int, max_depth: int) -> tuple[bytes, bool, None]:
        return state, False, None  # a check that misses what the store refuses

    monkeypatch.setattr(streams, "encode_state", trusting)
    store = asl.open()
    recorder = AllSourceAggregateRecorder(store, originator_id_type="text")
    texts = [b'{"ok":1}', b'{"nan": NaN}', b'{"ok":2}']
    recorder.insert_events([StoredEvent("x", i + 1, "t", t) for i, t in enumerate(texts)])
    assert [e.state for e in recorder.select_events("x")] == texts
    kinds = store.events(entity_id="x").to_pandas()["metadata"].tolist()
    assert kinds == [{}, {"state": "base64"}, {}]


def test_what_the_store_cannot_take_is_a_persistence_error_and_writes_nothing() -> None:
    store = asl.open(max_payload_bytes=1000)
    recorder = AllSourceApplicationRecorder(store, originator_id_type="text")
    with pytest.raises(DataError, match="max_payload_bytes"):
        recorder.insert_events(
            [StoredEvent("a", 1, "t", b"{}"), StoredEvent("a", 2, "t", b"x" * 900)]
        )
    with pytest.raises(DataError, match="keeps for tracking"):
        recorder.insert_events([StoredEvent("eventsourcing.tracking:a", 1, "t", b"{}")])
    assert store.stats()["events"] == 0
    store.close()
    with pytest.raises(OperationalError):
        recorder.insert_events([StoredEvent("a", 1, "t", b"{}")])


def test_versions_must_follow_one_another_and_may_start_anywhere() -> None:
    recorder = AllSourceApplicationRecorder(asl.open(), originator_id_type="text")
    recorder.insert_events([StoredEvent("a", 5, "t", b"{}"), StoredEvent("a", 6, "t", b"{}")])
    recorder.insert_events([StoredEvent("b", 0, "t", b"{}")])
    with pytest.raises(IntegrityError):
        recorder.insert_events([StoredEvent("a", 8, "t", b"{}")])  # 7 is next
    with pytest.raises(IntegrityError):
        recorder.insert_events([StoredEvent("a", 4, "t", b"{}")])  # below the first
    recorder.insert_events([StoredEvent("a", 7, "t", b"{}"), StoredEvent("b", 1, "t", b"{}")])
    assert [e.originator_version for e in recorder.select_events("a")] == [5, 6, 7]
    assert [e.originator_version for e in recorder.select_events("a", gt=5, lte=6)] == [6]
    assert [e.originator_version for e in recorder.select_events("b", desc=True)] == [1, 0]
    assert recorder.store.events(entity_id="a").to_pandas()["version"].tolist() == [1, 2, 3]


def test_tracking_records_are_durable_positions_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "process.events"
    with asl.open(path) as store:
        recorder = AllSourceProcessRecorder(store)
        recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"{}")], tracking=Tracking("up", 3))
        recorder.insert_events([], tracking=Tracking("up", 9))
        recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"{}")])
        assert recorder.max_notification_id() == 4  # the tracking records are no notifications
        assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 4]
    with asl.open(path) as store:
        recorder = AllSourceProcessRecorder(store)
        assert recorder.max_tracking_id("up") == 9
        with pytest.raises(IntegrityError):
            recorder.insert_events(
                [StoredEvent(uuid4(), 1, "t", b"{}")], tracking=Tracking("up", 9)
            )
        assert store.state("eventsourcing.tracking:up") == {"id": 9}
        assert store.stats()["events"] == 4


# -- time travel: the store's fold against the application's rebuild ------------------------

_OPS = st.one_of(
    st.tuples(st.just("deposit"), st.integers(-(10**6), 10**6)),
    st.tuples(st.just("rename"), st.text(max_size=8)),
    st.tuples(st.just("tag"), st.lists(st.text(max_size=3), max_size=3)),
    st.tuples(
        st.just("price"),
        st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**6),
        st.sampled_from(["EUR", "USD"]),
    ),
)


def _attributes(aggregate: Aggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}


@settings(max_examples=20)
@given(
    histories=st.lists(
        st.tuples(st.integers(0, 2), st.lists(_OPS, min_size=1, max_size=4)), max_size=12
    )
)
def test_state_as_of_an_event_time_is_the_repository_get_of_that_version(
    histories: list[tuple[int, list[tuple[Any, ...]]]],
) -> None:
    """``store.state(id, as_of=t)`` folds the payloads (each event's attributes, as the
    JSON transcoder wrote them) with merge patches; decoded by the application's own
    transcoder and without the two attributes every event has (``timestamp``, and
    ``originator_topic`` of the first), it is the aggregate's ``__dict__`` without its
    private fields, at the last version whose event time is at most ``t``."""
    app = application()
    store = store_of(app)
    accounts = [Account(f"owner{i}", 0) for i in range(3)]
    app.save(*accounts)
    for which, ops in histories:
        account = accounts[which]
        for op, *args in ops:
            getattr(account, op)(*args)
        app.save(account)  # several events of one save: one atomic batch
    transcoder = app.mapper.transcoder
    assert isinstance(transcoder, JSONTranscoder)
    for account in accounts:
        events = list(store.events(entity_id=str(account.id)))
        assert [e.version for e in events] == list(range(1, account.version + 1))
        for e in events:
            # The store's event time is the aggregate event's own timestamp.
            assert e.timestamp == app.repository.get(account.id, version=e.version).modified_on
            folded = store.state(str(account.id), as_of=e.timestamp)
            state = transcoder.decode(orjson.dumps(folded))
            moment = state.pop("timestamp")
            state.pop("originator_topic")
            version = max(x.version for x in events if x.timestamp <= e.timestamp)
            rebuilt = app.repository.get(account.id, version=version)
            assert state == _attributes(rebuilt)
            assert moment == rebuilt.modified_on
    app.close()


# -- a store reopened by another process ---------------------------------------------------


def test_an_application_reopens_its_folder_in_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "bank.events"
    app = application(path, IS_SNAPSHOTTING_ENABLED="y")
    account = Account("ada", 1)
    for n in range(2, 12):
        account.deposit(n)
    app.save(account)
    app.take_snapshot(account.id, version=5)
    app.close()
    # The child imports this file's Account by its topic; run it from this folder.
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from uuid import UUID
        from eventsourcing.application import Application
        from eventsourcing.utils import register_topic
        import test_eventsourcing as here
        register_topic({__name__ + ":Account"!r}, here.Account)
        for name in ("Opened", "Deposited", "Renamed", "Tagged", "Priced"):
            register_topic({__name__ + ":Account."!r} + name, getattr(here.Account, name))
        app = Application(env={{"PERSISTENCE_MODULE": "{MODULE}",
                               "ALLSOURCE_PATH": {str(path)!r},
                               "IS_SNAPSHOTTING_ENABLED": "y"}})
        account = app.repository.get(UUID({str(account.id)!r}))
        account.deposit(99)
        app.save(account)
        print(account.version, account.balance, app.recorder.max_notification_id())
        app.close()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["12", "99", "12"]
    app = application(path, IS_SNAPSHOTTING_ENABLED="y")
    assert app.repository.get(account.id).balance == 99
    assert [s.originator_version for s in app.snapshots.recorder.select_events(account.id)] == [5]  # type: ignore[union-attr]
    app.close()


# -- a system: a process application follows another, its positions tracked ----------------


class Seen(Aggregate):
    @event("Seen")
    def __init__(self, topic: str, version: int) -> None:
        self.topic = topic
        self.version_seen = version


class Bank(Leader[UUID]):
    """The upstream application."""


class Auditor(ProcessApplication[UUID]):
    """Records one ``Seen`` aggregate per event of the bank, with the bank's position."""

    def policy(self, domain_event: Any, processing_event: Any) -> None:
        seen = Seen(type(domain_event).__qualname__, domain_event.originator_version)
        processing_event.collect_events(seen)


def test_a_process_application_tracks_its_upstream_atomically_and_resumes(
    tmp_path: Path,
) -> None:
    env = {
        "PERSISTENCE_MODULE": MODULE,
        "BANK_ALLSOURCE_PATH": str(tmp_path / "bank.events"),
        "AUDITOR_ALLSOURCE_PATH": str(tmp_path / "auditor.events"),
    }
    system = System(pipes=[[Bank, Auditor]])
    runner = SingleThreadedRunner(system, env=env)
    runner.start()
    bank = runner.get(Bank)
    account = Account("ada", 1)
    account.deposit(2)
    bank.save(account)
    bank.save(Account("bob", 5))
    auditor = runner.get(Auditor)
    assert auditor.recorder.max_tracking_id("Bank") == 3
    # Its own log: Seen, tracking, Seen, tracking, Seen, tracking; tracking is no notification.
    assert auditor.recorder.max_notification_id() == 5
    runner.stop()

    runner = SingleThreadedRunner(system, env=env)
    runner.start()  # catches up from its tracked position: nothing is processed twice
    bank, auditor = runner.get(Bank), runner.get(Auditor)
    bank.save(Account("cy", 9))
    store = store_of(auditor)
    seen = store.events(event_type=f"{__name__}:Seen.Seen").to_pandas()
    assert seen["payload"].map(lambda p: p["topic"]).tolist() == [
        "Account.Opened",
        "Account.Deposited",
        "Account.Opened",
        "Account.Opened",
    ]
    # Each Seen event and the tracking record of the notification behind it were one batch.
    log = store.sql("select sequence, event_type from log order by sequence").fetchall()
    kinds = ["seen" if t.endswith("Seen.Seen") else t for _, t in log]
    assert kinds == ["seen", "eventsourcing.tracking"] * 4
    assert store.state("eventsourcing.tracking:Bank") == {"id": 4}
    runner.stop()


class TestProcessRecorderAsApplicationRecorder(_Stores, suites.ApplicationRecorderTestCase):
    """Without tracking records, a process recorder's notification ids are gapless too."""

    def create_recorder(self) -> AllSourceProcessRecorder:
        return AllSourceProcessRecorder(self.open_store())


# -- kill -9 in the middle of saves ---------------------------------------------------------

_SAVER = """
import sys
from uuid import UUID
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

class Tally(Aggregate):
    @event("Started")
    def __init__(self) -> None:
        self.n = 0

    @event("Counted")
    def count(self, n: int) -> None:
        self.n = n

app = Application(env={"PERSISTENCE_MODULE": "allsource_lab.eventsourcing",
                       "ALLSOURCE_PATH": sys.argv[1], "ALLSOURCE_FSYNC": "always"})
tally = Tally()
app.save(tally)
print(tally.id, flush=True)
n = 0
while True:
    for _ in range(3):
        n += 1
        tally.count(n)
    app.save(tally)  # three events, one batch
    print(tally.version, flush=True)
"""


def test_saves_acknowledged_before_a_kill_survive_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "tally.events"
    with subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        tally_id = UUID(child.stdout.readline().strip())
        acknowledged = 1
        while acknowledged < 60:
            acknowledged = int(child.stdout.readline())
        child.kill()  # SIGKILL: no atexit, no close()
    app = application(path)
    events = list(app.recorder.select_events(tally_id))
    # Every acknowledged save is there, and no save is there in part.
    assert len(events) >= acknowledged
    assert (len(events) - 1) % 3 == 0
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    # The child's event classes live in its __main__: read the states as JSON here.
    assert orjson.loads(events[-1].state)["n"] == len(events) - 1
    app.close()
