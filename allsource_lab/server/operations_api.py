"""Operating a store: snapshots, checkpoints, compaction, the schema registry, replays
and pipelines — each the library's method of the same meaning (``store.snapshot``,
``store.checkpoint``, ``store.compact``, ``store.schemas``, ``store.replay``,
``store.pipelines``).

Replays rebuild a projection the store runs live (a pipeline, or a projection added from
Python in the server's process), by name; their ids are the library's ``ReplayJob.id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from allsource_lab.errors import InvalidArgument, NotFound
from allsource_lab.server.inputs import field, optional_int, optional_text
from allsource_lab.server.render import json_response, rows_of
from allsource_lab.server.routing import Call, Operation

if TYPE_CHECKING:
    from allsource_lab.replay import ReplayJob

__all__ = ["OPERATIONS"]


# -- snapshots, checkpoints, compaction -------------------------------------------------


async def create_snapshot(call: Call) -> Response:
    body = await call.body()
    entity_id = field(body, "entity_id", str)
    version = await call.run(call.store.snapshot, entity_id)
    return json_response({"entity_id": entity_id, "version": version}, 201)


async def checkpoint(call: Call) -> Response:
    sealed = await call.run(call.store.checkpoint)
    return json_response({"sealed": sealed})


async def trigger_compaction(call: Call) -> Response:
    merged = await call.run(call.store.compact)
    return json_response({"compacted": merged})


# -- schemas ----------------------------------------------------------------------------


def _version_object(version: Any) -> dict[str, Any]:
    return {
        "subject": version.subject,
        "version": version.version,
        "id": version.id,
        "schema": version.schema,
        "deleted": version.deleted,
    }


async def register_schema(call: Call) -> Response:
    body = await call.body()
    subject = field(body, "subject", str)
    schema = field(body, "schema", (dict, str))
    compatibility = field(body, "compatibility", str, None)
    registered = await call.run(call.store.schemas.register, subject, schema, compatibility)
    return json_response(_version_object(registered), 201)


async def list_subjects(call: Call) -> Response:
    return json_response({"subjects": await call.run(call.store.schemas.subjects)})


async def get_schema(call: Call) -> Response:
    version = optional_int(call.request, "version", minimum=1)
    found = await call.run(call.store.schemas.get, call.path_param("subject"), version)
    return json_response(_version_object(found))


async def list_schema_versions(call: Call) -> Response:
    subject = call.path_param("subject")
    versions = await call.run(call.store.schemas.versions, subject)
    if not versions:
        raise NotFound(f"no live schema for subject {subject!r}; see GET /api/v1/schemas")
    return json_response({"subject": subject, "versions": versions})


async def validate_event(call: Call) -> Response:
    body = await call.body()
    subject = field(body, "subject", str)
    if "payload" not in body:
        raise InvalidArgument("the body needs a 'payload' field (the payload to validate)")
    problems = await call.run(call.store.schemas.validate, subject, [body["payload"]])
    return json_response(
        {
            "subject": subject,
            "valid": not problems,
            "problems": [{"path": p.path, "message": p.message} for p in problems],
        }
    )


async def set_compatibility(call: Call) -> Response:
    body = await call.body()
    mode = field(body, "compatibility", str)
    subject = call.path_param("subject")
    schemas = call.store.schemas
    await call.run(schemas.set_compatibility, subject, mode)
    return json_response({"subject": subject, "compatibility": schemas.compatibility(subject)})


# -- replays ----------------------------------------------------------------------------


def _replay_object(job: ReplayJob) -> dict[str, Any]:
    progress = job.progress
    return {
        "replay_id": job.id,
        "projection": job.projection.name,
        "status": job.status,
        "processed": progress.processed,
        "total": progress.total,
        "percent": progress.percent,
        "events_per_sec": progress.events_per_sec,
        "eta_s": progress.eta_s,
        "error": None if job.error is None else f"{type(job.error).__name__}: {job.error}",
    }


def _job(call: Call) -> ReplayJob:
    text = call.path_param("replay_id")
    for job in call.store.replays():
        if str(job.id) == text:
            return job
    raise NotFound(f"no replay {text!r} on this store; see GET /api/v1/replay")


async def start_replay(call: Call) -> Response:
    body = await call.body()
    name = field(body, "projection", str)
    since = field(body, "since", (int, str), None)
    until = field(body, "until", (int, str), None)
    event_types = field(body, "event_types", (str, list), None)
    batch_size = field(body, "batch_size", int, 10_000)
    store = call.store

    def start() -> ReplayJob:
        if name not in store.projections:
            raise NotFound(
                f"no live projection or pipeline named {name!r}; see GET /api/v1/pipelines"
            )
        return store.replay(
            store.projections[name],
            since=since,
            until=until,
            event_types=event_types,
            batch_size=batch_size,
        )

    job = await call.run(start)
    return json_response(_replay_object(job), 202)


async def list_replays(call: Call) -> Response:
    return json_response({"replays": [_replay_object(j) for j in call.store.replays()]})


async def replay_progress(call: Call) -> Response:
    return json_response(_replay_object(_job(call)))


async def cancel_replay(call: Call) -> Response:
    job = _job(call)
    job.cancel()
    await call.run(job.wait, 10.0)
    return json_response(_replay_object(job))


async def delete_replay(call: Call) -> Response:
    job = _job(call)
    await call.run(call.store.remove_replay, job)
    return Response(status_code=204)


# -- pipelines --------------------------------------------------------------------------


def _start(call: Call) -> str | int:
    text = optional_text(call.request, "start") or "now"
    if text in ("now", "beginning"):
        return text
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(
            f"start must be 'now', 'beginning' or a sequence, not {text!r}"
        ) from None


async def register_pipeline(call: Call) -> Response:
    body = await call.body()
    start = _start(call)
    pipelines = call.store.pipelines
    pipeline = await call.run(pipelines.add, body, start=start)
    return json_response({"name": pipeline.name, "spec": pipeline.to_dict()}, 201)


async def list_pipelines(call: Call) -> Response:
    return json_response({"pipelines": call.store.pipelines.list()})


async def all_pipeline_stats(call: Call) -> Response:
    pipelines = call.store.pipelines
    return json_response({"pipelines": [pipelines.stats(n) for n in pipelines.list()]})


async def get_pipeline(call: Call) -> Response:
    pipeline = call.store.pipelines.get(call.path_param("name"))
    return json_response({"name": pipeline.name, "spec": pipeline.to_dict()})


async def remove_pipeline(call: Call) -> Response:
    await call.run(call.store.pipelines.remove, call.path_param("name"))
    return Response(status_code=204)


async def pipeline_stats(call: Call) -> Response:
    return json_response(await call.run(call.store.pipelines.stats, call.path_param("name")))


async def reset_pipeline(call: Call) -> Response:
    pipeline = await call.run(call.store.pipelines.reset, call.path_param("name"))
    return json_response({"name": pipeline.name, "spec": pipeline.to_dict()})


async def pipeline_results(call: Call) -> Response:
    output = optional_text(call.request, "output")
    frame = await call.run(call.store.pipelines.results, call.path_param("name"), output)
    return json_response({"name": call.path_param("name"), "rows": rows_of(frame)})


def _op(method: str, path: str, role: str, handler: Any, summary: str) -> Operation:
    return Operation(method, path, role, handler, handler.__name__, summary)


OPERATIONS = (
    _op("POST", "/api/v1/snapshots", "write", create_snapshot, "Snapshot an entity's state"),
    _op("POST", "/api/v1/checkpoint", "admin", checkpoint, "Seal the tail into a segment"),
    _op("POST", "/api/v1/compaction/trigger", "admin", trigger_compaction, "Merge segments"),
    _op("POST", "/api/v1/schemas", "admin", register_schema, "Register a schema version"),
    _op("GET", "/api/v1/schemas", "read", list_subjects, "Subjects with a live schema"),
    _op("POST", "/api/v1/schemas/validate", "read", validate_event, "Validate a payload"),
    _op("GET", "/api/v1/schemas/{subject}", "read", get_schema, "A subject's schema"),
    _op(
        "GET",
        "/api/v1/schemas/{subject}/versions",
        "read",
        list_schema_versions,
        "A subject's live versions",
    ),
    _op(
        "PUT",
        "/api/v1/schemas/{subject}/compatibility",
        "admin",
        set_compatibility,
        "Set a subject's compatibility mode",
    ),
    _op("POST", "/api/v1/replay", "admin", start_replay, "Rebuild a projection from history"),
    _op("GET", "/api/v1/replay", "read", list_replays, "Replays started on the store"),
    _op("GET", "/api/v1/replay/{replay_id}", "read", replay_progress, "A replay's progress"),
    _op("POST", "/api/v1/replay/{replay_id}/cancel", "admin", cancel_replay, "Cancel a replay"),
    _op("DELETE", "/api/v1/replay/{replay_id}", "admin", delete_replay, "Forget a replay"),
    _op("POST", "/api/v1/pipelines", "admin", register_pipeline, "Add a pipeline (JSON form)"),
    _op("GET", "/api/v1/pipelines", "read", list_pipelines, "Names of the pipelines"),
    _op("GET", "/api/v1/pipelines/stats", "read", all_pipeline_stats, "Every pipeline's stats"),
    _op("GET", "/api/v1/pipelines/{name}", "read", get_pipeline, "A pipeline's JSON form"),
    _op("DELETE", "/api/v1/pipelines/{name}", "admin", remove_pipeline, "Remove a pipeline"),
    _op("GET", "/api/v1/pipelines/{name}/stats", "read", pipeline_stats, "A pipeline's stats"),
    _op("PUT", "/api/v1/pipelines/{name}/reset", "admin", reset_pipeline, "Reset a pipeline"),
    _op("GET", "/api/v1/pipelines/{name}/results", "read", pipeline_results, "Its results"),
)
