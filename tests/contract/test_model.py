"""Any sequence of appends, batches, checkpoints and reopens equals a plain-Python model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import allsource_lab as asl

entities = st.sampled_from(["a", "b", "c", "ü", "order-17"])
types = st.sampled_from(["t.one", "t.two", "t.three"])
payloads = st.dictionaries(
    st.text(max_size=5),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.text(max_size=8),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=4,
)


class StoreModel(RuleBasedStateMachine):
    """The store against a list of (entity, type, payload, version)."""

    durable = True

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp()) / "s.events"
        self.store = asl.open(
            self.folder if self.durable else None, fsync="never", checkpoint_every_events=7
        )
        self.model: list[tuple[str, str, dict, int]] = []
        self.versions: dict[str, int] = {}

    def _record(self, entity: str, etype: str, payload: dict) -> None:
        self.versions[entity] = self.versions.get(entity, 0) + 1
        self.model.append((entity, etype, payload, self.versions[entity]))

    @rule(entity=entities, etype=types, payload=payloads)
    def append(self, entity: str, etype: str, payload: dict) -> None:
        ev = self.store.append(etype, entity, payload)
        self._record(entity, etype, payload)
        assert (ev.sequence, ev.version) == (len(self.model), self.versions[entity])

    @rule(rows=st.lists(st.tuples(entities, types, payloads), min_size=1, max_size=12))
    def batch(self, rows: list[tuple[str, str, dict]]) -> None:
        res = self.store.append_batch(
            [{"event_type": t, "entity_id": e, "payload": p} for e, t, p in rows]
        )
        for e, t, p in rows:
            self._record(e, t, p)
        assert (res.first_sequence, res.last_sequence) == (
            len(self.model) - len(rows) + 1,
            len(self.model),
        )

    @rule(entity=entities, wrong=st.integers(0, 5))
    def stale_write_is_refused(self, entity: str, wrong: int) -> None:
        actual = self.versions.get(entity, 0)
        if wrong == actual:
            return
        with pytest.raises(asl.ConcurrencyError):
            self.store.append("t.one", entity, {}, expected_version=wrong)

    @rule()
    def checkpoint(self) -> None:
        self.store.checkpoint()

    @precondition(lambda self: self.durable)
    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        if clean:
            self.store.close()
        else:
            # Abandon without checkpoint: recovery must come from the WAL.
            self.store._log._stop.set()
            if self.store._log._flusher is not None:
                self.store._log._flusher.join()
            self.store.flush()
            self.store._storage.close()
            self.store._log.closed = True
        self.store = asl.open(self.folder, fsync="never", checkpoint_every_events=7)

    @invariant()
    def matches_model(self) -> None:
        got = [(e.entity_id, e.event_type, e.payload, e.version) for e in self.store.events()]
        assert got == self.model
        assert self.store.stats()["events"] == len(self.model)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder.parent, ignore_errors=True)


class MemoryStoreModel(StoreModel):
    durable = False


TestFolderStoreModel = StoreModel.TestCase
TestFolderStoreModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
TestMemoryStoreModel = MemoryStoreModel.TestCase
TestMemoryStoreModel.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)


def test_verify_is_clean_after_a_model_run(tmp_path):
    store = asl.open(tmp_path / "s", checkpoint_every_events=5)
    for i in range(23):
        store.append("t", f"e{i % 4}", {"i": i})
    store.append_batch([{"event_type": "t", "entity_id": "e1", "payload": {}}] * 4)
    report = store.verify()
    assert report.ok, report.problems
    assert report.files_checked >= 3
    store.close()
