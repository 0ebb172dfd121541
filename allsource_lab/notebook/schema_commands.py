"""``%allsource schema register|check|show|list|compat|panel``: the schema registry.

A schema is JSON on the line (or ``$name`` of a dict) or the cell body. ``-o`` binds the
``SchemaVersion`` (register, show), the ``CompatibilityReport`` (check), ``{subject:
[versions]}`` (list), the mode (compat) or the widget (panel).
"""

from __future__ import annotations

import argparse

from IPython.core.error import UsageError

from allsource_lab.display.views import (
    CompatibilityView,
    SchemaListView,
    SchemaReportView,
    SchemaView,
)
from allsource_lab.notebook.commands import json_object
from allsource_lab.notebook.live_commands import widgets
from allsource_lab.notebook.session import Context, Outcome

__all__ = ["schema"]


def _schema_text(ctx: Context, args: argparse.Namespace) -> dict[str, object]:
    body = ctx.body()
    if args.schema is not None and body is not None:
        raise UsageError("give the schema on the line or in the cell body, not both")
    text = args.schema if args.schema is not None else body
    if text is None:
        raise UsageError(
            f"no schema given: put it in the cell body (%%allsource schema {args.action} "
            f"{args.subject}) or on the line"
        )
    return json_object(text, "the schema")


def _shown(ctx: Context, subject: str, version: int | None = None) -> Outcome:
    registry = ctx.store().schemas
    found = registry.get(subject, version)
    view = SchemaView(
        found,
        versions=registry.versions(subject),
        compatibility=registry.compatibility(subject),
        store=ctx.info(),
    )
    return Outcome(view, found)


def schema(ctx: Context, args: argparse.Namespace) -> Outcome:
    """Dispatch on the schema ACTION."""
    if ctx.body() is not None and args.action not in ("register", "check"):
        raise UsageError(f"schema {args.action} takes no cell body")
    registry = ctx.store().schemas
    if args.action == "register":
        registered = registry.register(args.subject, _schema_text(ctx, args), args.compat)
        return _shown(ctx, registered.subject, registered.version)
    if args.action == "check":
        report = registry.check(args.subject, _schema_text(ctx, args))
        return Outcome(SchemaReportView(report, subject=args.subject, store=ctx.info()), report)
    if args.action == "show":
        return _shown(ctx, args.subject, args.version)
    if args.action == "list":
        subjects = {s: registry.versions(s) for s in registry.subjects()}
        listed = {s: (v, registry.compatibility(s)) for s, v in subjects.items()}
        view = SchemaListView(listed, registry.compatibility(), store=ctx.info())
        return Outcome(view, subjects)
    if args.action == "compat":
        return _compatibility(ctx, args)
    widget = widgets("schema panel").schema_panel(ctx.store())
    return Outcome(widget, widget)


def _compatibility(ctx: Context, args: argparse.Namespace) -> Outcome:
    registry = ctx.store().schemas
    if args.default:
        if args.mode is not None:
            raise UsageError("schema compat --default takes one MODE, no SUBJECT")
        subject, mode = None, args.subject
    elif args.subject is None:
        raise UsageError("give a SUBJECT, or --default for the store-wide mode")
    else:
        subject, mode = args.subject, args.mode
    if mode is not None:
        registry.set_compatibility(subject, mode)
    current = registry.compatibility(subject)
    return Outcome(CompatibilityView(subject, current, store=ctx.info()), current)
