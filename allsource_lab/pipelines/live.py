"""``store.pipelines``: the store's live pipelines, by name.

A pipeline runs as a projection of the store (see :mod:`allsource_lab.projections.runner`):
adding one catches it up from ``start`` and then feeds it every append, after the write;
it is saved with the projections (on checkpoint and close) and, added again under the
same name after a reopen, resumes from its saved state and position. Pipelines and
projections share one namespace of names.

This object keeps nothing of its own (everything lives in ``store.projections``), so any
number of them over one store agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from allsource_lab.errors import InvalidArgument, NotFound
from allsource_lab.pipelines.pipeline import Pipeline

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pandas as pd

    from allsource_lab.projections.runner import Projections
    from allsource_lab.replay import ReplayJob

__all__ = ["PipelineHost", "Pipelines"]


class PipelineHost(Protocol):
    """What ``store.pipelines`` needs of its store: its live projections and replays."""

    @property
    def projections(self) -> Projections: ...

    @property
    def replay(self) -> Callable[..., ReplayJob]: ...


class Pipelines:
    """Add, inspect and remove a store's live pipelines (``store.pipelines``).

    >>> import allsource_lab as asl
    >>> store = asl.open()
    >>> _ = store.append("click", "u1", {"page": "/"}, timestamp="2026-01-01T00:00:05Z")
    >>> pipelines = Pipelines(store)
    >>> _ = pipelines.add(Pipeline("clicks", "click").window("tumbling", "1m"),
    ...                   start="beginning")
    >>> _ = store.append("click", "u2", {"page": "/a"}, timestamp="2026-01-01T00:01:30Z")
    >>> pipelines.list(), pipelines.stats("clicks")["events_in"]
    (['clicks'], 2)
    >>> pipelines.results("clicks")[["window_start", "count", "closed"]]
                   window_start  count  closed
    0 2026-01-01 00:00:00+00:00      1    True
    1 2026-01-01 00:01:00+00:00      1   False
    """

    def __init__(self, store: PipelineHost) -> None:
        self._store = store

    def add(
        self, pipeline: Pipeline | Any, start: str | int = "now", resume: bool = True
    ) -> Pipeline:
        """Start running ``pipeline`` live; returns it.

        ``pipeline``: a :class:`Pipeline`, or its JSON form (text or dict). ``start``:
        ``"now"`` (only events appended from here on), ``"beginning"`` (back-fill: every
        stored event first) or a sequence. A pipeline saved under the same name before a
        reopen resumes from its saved state (``resume=False`` starts afresh); a saved
        state of another definition is discarded (``store.recovery_problems`` says so).

        Raises:
            InvalidArgument: a pipeline or projection of that name is already added, the
                pipeline object runs in another open store, a bad ``start``, or a bad
                JSON spec.
            TypeError: not a Pipeline or a spec.
        """
        if isinstance(pipeline, str | bytes | dict):
            pipeline = Pipeline.from_json(pipeline)
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"add() takes an asl.Pipeline or its JSON spec, not {type(pipeline).__name__}"
            )
        other = pipeline.host
        if (
            other is not None
            and other.projections is not self._store.projections
            and not getattr(other, "closed", True)
            and pipeline.name in other.projections
            and other.projections[pipeline.name] is pipeline
        ):
            raise InvalidArgument(
                "this pipeline object already runs in another open store; add a copy "
                "(Pipeline.from_json(p.to_json())) or remove it there first"
            )
        if pipeline.name in self._store.projections:
            kind = "pipeline" if pipeline.name in self else "projection"
            raise InvalidArgument(
                f"a {kind} named {pipeline.name!r} is already added; remove it first or "
                "give the new pipeline another name"
            )
        pipeline.host = self._store
        added: Pipeline = self._store.projections.add(pipeline, start=start, resume=resume)
        return added

    def remove(self, name: str, forget: bool = True) -> Pipeline:
        """Stop a pipeline and return it; ``forget`` also drops its saved state.

        Raises:
            NotFound: no pipeline of that name.
        """
        pipeline = self.get(name)
        self._store.projections.remove(name, forget=forget)
        return pipeline

    def get(self, name: str) -> Pipeline:
        """The pipeline added under ``name``.

        Raises:
            NotFound: no pipeline of that name.
        """
        found = self._store.projections[name] if name in self._store.projections else None  # noqa: SIM401
        if not isinstance(found, Pipeline):
            raise NotFound(f"no pipeline named {name!r}; add it with store.pipelines.add")
        return found

    def list(self) -> list[str]:
        """The names of the added pipelines, in the order they were added."""
        return [p.name for p in self._store.projections if isinstance(p, Pipeline)]

    def stats(self, name: str) -> dict[str, Any]:
        """:meth:`Pipeline.stats` with the runner's view: ``status`` (running, stopped,
        replaying), ``position`` (last sequence fed) and ``lag`` (events not fed yet).

        Raises:
            NotFound: no pipeline of that name.
        """
        pipeline = self.get(name)
        info = self._store.projections.info(name)
        return {
            "name": name,
            "status": info.status,
            "position": info.position,
            "lag": info.lag,
            **pipeline.stats(),
        }

    def results(
        self, name: str, output: str | None = None, include_open: bool = True
    ) -> pd.DataFrame:
        """:meth:`Pipeline.results` of the pipeline ``name``.

        Raises:
            NotFound: no pipeline of that name.
        """
        return self.get(name).results(output=output, include_open=include_open)

    def reset(self, name: str) -> Pipeline:
        """Forget a pipeline's state and stats (and its saved state); it goes on with the
        events appended from now on. To rebuild it from history, use :meth:`replay`.

        Raises:
            NotFound: no pipeline of that name.
        """
        pipeline = self.remove(name, forget=True)
        pipeline.reset()
        return self.add(pipeline, start="now", resume=False)

    def flush(self, name: str) -> int:
        """Close every open window of ``name`` now; see :meth:`Pipeline.flush`.

        Raises:
            NotFound: no pipeline of that name.
        """
        return self.get(name).flush()

    def replay(self, name: str, **options: Any) -> ReplayJob:
        """Rebuild ``name`` from the stored events (``store.replay`` with ``options``:
        ``since``, ``until``, ``background``...); live feeding resumes after it.

        Raises:
            NotFound: no pipeline of that name.
        """
        return self._store.replay(self.get(name), **options)

    def __getitem__(self, name: str) -> Pipeline:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.list()

    def __iter__(self) -> Iterator[Pipeline]:
        return iter([p for p in self._store.projections if isinstance(p, Pipeline)])

    def __len__(self) -> int:
        return len(self.list())

    def __repr__(self) -> str:
        names = self.list()
        return f"Pipelines({', '.join(names) if names else 'none'})"
