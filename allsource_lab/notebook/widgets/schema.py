"""The schema panel: a store's subjects, their versions and mode, and what changed.

Two versions of a subject are compared twice over: as JSON (keys added, removed and
changed, by JSON Pointer) and as the registry's compatibility rules see them — what a
reader on the newer schema may fail on in data written under the older (backward), and
the reverse (forward). A candidate schema pasted into the panel is checked against the
subject's mode, exactly as ``store.schemas.check`` does before a ``register``.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets
import orjson
import traitlets

from allsource_lab.errors import InvalidArgument
from allsource_lab.notebook.jsondiff import Change, diff_json, pointer
from allsource_lab.notebook.widgets.panel import (
    TABLE_STYLE,
    Panel,
    json_block,
    reported,
    short_json,
)
from allsource_lab.schemas.compat import backward_problems

if TYPE_CHECKING:
    from allsource_lab.store import EventStore

__all__ = ["SchemaPanel"]


class SchemaPanel(Panel):
    """Subjects, versions, the compatibility mode and diffs of ``store.schemas``.

    Traits: ``subject`` (the subject shown), ``version`` (its version shown),
    ``compare_to`` (the version diffed against, 0 for none; the one before ``version``
    when a subject is chosen), ``candidate`` (JSON text of a schema to check) and,
    read-only, ``subjects``, ``versions``, ``mode``, ``changes`` (``Change`` tuples from
    ``compare_to`` to ``version``), ``backward`` and ``forward`` (compatibility problems
    of that change) and ``report`` (the candidate's check, as text).
    """

    subject = traitlets.Unicode("", help="the subject shown")
    version = traitlets.Int(0, help="the version shown (0: none)")
    compare_to = traitlets.Int(0, help="the version diffed against (0: none)")
    candidate = traitlets.Unicode("", help="JSON text of a schema to check against the mode")
    subjects: traitlets.List[str] = traitlets.List(
        read_only=True, help="subjects with a live version"
    )
    versions: traitlets.List[int] = traitlets.List(
        read_only=True, help="live versions of the subject"
    )
    mode = traitlets.Unicode("", read_only=True, help="the subject's compatibility mode")
    changes: traitlets.List[Change] = traitlets.List(
        read_only=True, help="JSON changes from compare_to to version"
    )
    backward: traitlets.List[str] = traitlets.List(
        read_only=True, help="what version's readers fail on"
    )
    forward: traitlets.List[str] = traitlets.List(
        read_only=True, help="what compare_to's readers fail on"
    )
    report = traitlets.Unicode("", read_only=True, help="the candidate's compatibility check")

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._filling = False  # controls are being set from traits, not by a user
        self._subject_list = ipywidgets.Select(options=[], rows=6, layout={"width": "16em"})
        self._version_pick = ipywidgets.Dropdown(options=[], description="version")
        self._compare_pick = ipywidgets.Dropdown(options=[("none", 0)], description="diff with")
        self._reload = ipywidgets.Button(description="refresh", layout={"width": "auto"})
        self._mode_line = ipywidgets.HTML("")
        self._diff = ipywidgets.HTML("")
        self._schema = ipywidgets.HTML("")
        self._candidate = ipywidgets.Textarea(
            placeholder="paste a JSON Schema to check it against the subject's mode",
            layout={"width": "98%", "height": "6em"},
        )
        self._check = ipywidgets.Button(description="check", layout={"width": "auto"})
        self._report_line = ipywidgets.HTML("")
        super().__init__(
            "Schemas",
            [
                ipywidgets.HBox(
                    [
                        self._subject_list,
                        ipywidgets.VBox(
                            [self._version_pick, self._compare_pick, self._reload, self._mode_line]
                        ),
                    ]
                ),
                self._diff,
                self._schema,
                self._candidate,
                ipywidgets.HBox([self._check, self._report_line]),
            ],
        )
        traitlets.link((self._candidate, "value"), (self, "candidate"))
        self._subject_list.observe(self._on_control("subject"), names="value")
        self._version_pick.observe(self._on_control("version"), names="value")
        self._compare_pick.observe(self._on_control("compare_to"), names="value")
        self._reload.on_click(lambda _: self.refresh())
        self._check.on_click(lambda _: self.check())
        self.observe(self._on_subject, names="subject")
        self.observe(self._on_versions, names=["version", "compare_to"])
        self.refresh()

    # -- what a click calls -----------------------------------------------------------

    @reported
    def refresh(self) -> None:
        """Read the registry again; keeps the subject shown if it is still there."""
        subjects = self._store.schemas.subjects()
        self.set_trait("subjects", subjects)
        with self._quietly():
            self._subject_list.options = subjects
        chosen = self.subject if self.subject in subjects else (subjects[0] if subjects else "")
        if chosen != self.subject:
            self.subject = chosen  # loaded by _on_subject
        else:
            self._load_subject()

    @reported
    def check(self) -> None:
        """Check ``candidate`` against the subject's mode and diff it with the newest
        version (``store.schemas.check``; nothing is registered)."""
        self.set_trait("report", "")
        self._report_line.value = ""
        if not self.subject:
            raise InvalidArgument("no subject chosen: register a schema first")
        candidate = orjson.loads(self.candidate) if self.candidate.strip() else None
        if not isinstance(candidate, dict):
            raise InvalidArgument("paste a JSON Schema (a JSON object) to check")
        result = self._store.schemas.check(self.subject, candidate)
        self.set_trait("report", str(result))
        newest = self._store.schemas.get(self.subject).schema
        colour = "#1b7f3b" if result.compatible else "#b00020"
        self._report_line.value = (
            f"<span style='color:{colour}'>{html.escape(str(result))}</span>"
            f"{_changes_html(diff_json(newest, candidate), 'changes from the newest version')}"
        )

    # -- handlers ---------------------------------------------------------------------

    def _on_control(self, name: str) -> Callable[[Any], None]:
        return lambda change: self._copy(name, change)

    @reported
    def _copy(self, name: str, change: Any) -> None:
        """A control changed: set the trait it stands for (unless the panel set it)."""
        if not self._filling and change["new"] is not None:
            setattr(self, name, change["new"])

    @reported
    def _on_subject(self, change: Any) -> None:
        self._load_subject()

    @reported
    def _on_versions(self, change: Any) -> None:
        if not self._filling:
            self._show()

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """While open, changes are the panel's own doing: handlers ignore them."""
        was, self._filling = self._filling, True
        try:
            yield
        finally:
            self._filling = was

    def _load_subject(self) -> None:
        subject = self.subject
        versions = self._store.schemas.versions(subject) if subject else []
        self.set_trait("versions", versions)
        self.set_trait("mode", self._store.schemas.compatibility(subject or None))
        with self._quietly():
            self._subject_list.value = subject or None
            self._version_pick.options = [(f"v{v}", v) for v in versions]
            self._compare_pick.options = [("none", 0), *((f"v{v}", v) for v in versions)]
            self.version = versions[-1] if versions else 0
            self.compare_to = versions[-2] if len(versions) > 1 else 0
        self._show()

    def _show(self) -> None:
        subject, version, base = self.subject, self.version, self.compare_to
        with self._quietly():
            self._version_pick.value = version if version in self.versions else None
            self._compare_pick.value = base if base in self.versions else 0
        if not subject:
            self._mode_line.value = ""
            self._diff.value = (
                "<i>no schemas registered: store.schemas.register(event_type, schema)</i>"
            )
            self._schema.value = ""
            return
        self._mode_line.value = f"mode <b>{html.escape(self.mode)}</b>"
        shown = self._store.schemas.get(subject, version)
        self._schema.value = f"<b>{html.escape(subject)} v{version}</b>{json_block(shown.schema)}"
        if not base or base == version:
            self.set_trait("changes", [])
            self.set_trait("backward", [])
            self.set_trait("forward", [])
            self._diff.value = "<i>choose a version to diff with</i>"
            return
        older = self._store.schemas.get(subject, base).schema
        changes = diff_json(older, shown.schema)
        backward = backward_problems(older, shown.schema)
        forward = backward_problems(shown.schema, older)
        self.set_trait("changes", changes)
        self.set_trait("backward", backward)
        self.set_trait("forward", forward)
        self._diff.value = (
            _changes_html(changes, f"v{base} → v{version}")
            + _problems_html(f"backward (v{version} reads data written under v{base})", backward)
            + _problems_html(f"forward (v{base} reads data written under v{version})", forward)
        )


def _changes_html(changes: list[Change], title: str) -> str:
    if not changes:
        return f"<div><b>{html.escape(title)}</b>: <i>identical</i></div>"
    rows = "".join(
        f"<tr><td><code>{html.escape(pointer(c.path))}</code></td><td>{c.kind}</td>"
        f"<td><code>{'' if c.kind == 'added' else html.escape(short_json(c.before))}</code></td>"
        f"<td><code>{'' if c.kind == 'removed' else html.escape(short_json(c.after))}</code></td>"
        "</tr>"
        for c in changes
    )
    return (
        f"<div><b>{html.escape(title)}</b>"
        f'<table style="{TABLE_STYLE}"><thead><tr><th>path</th><th>change</th>'
        f"<th>before</th><th>after</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _problems_html(title: str, problems: list[str]) -> str:
    if not problems:
        return f"<div>{html.escape(title)}: <span style='color:#1b7f3b'>compatible</span></div>"
    items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    return (
        f"<div>{html.escape(title)}: <span style='color:#b00020'>breaks</span>"
        f"<ul>{items}</ul></div>"
    )
