"""Live pipelines: filter, map, enrich, window, reduce and branch events as they arrive.

A pipeline is a source (event types) and a chain of operators. Build one in Python::

    p = (asl.Pipeline("orders", ["order.placed"])
         .filter("payload.amount", "gt", 100)
         .window("tumbling", "1m", by="payload.region", allowed_lateness="30s")
         .reduce({"*": "count", "payload.amount": ["sum", "avg"]}))
    store.pipelines.add(p)                   # live from now; start="beginning" back-fills

or as JSON, in the shape the original AllSource service took (``Pipeline.from_json``;
``to_json`` writes the canonical form below and reads back to the same pipeline)::

    {"name": "orders", "source_event_types": ["order.placed"], "enabled": true,
     "max_results": 10000,
     "operators": [
       {"type": "filter", "field": "payload.amount", "op": "gt", "value": 100},
       {"type": "window",
        "config": {"window_type": "tumbling", "size_seconds": 60,
                   "allowed_lateness_seconds": 30, "by": ["payload.region"]},
        "aggregation": {"type": "reduce",
                        "aggregates": {"*": ["count"], "payload.amount": ["sum", "avg"]},
                        "group_by": []}}]}

Operators (JSON keys; the Python method takes the same names):

- ``filter``: ``field``, ``op`` (eq, ne, gt, ge, lt, le, contains, in, exists), ``value``.
- ``map``: ``field``, ``transform``: ``uppercase``/``lowercase``/``trim``,
  ``add:N``/``subtract:N``/``multiply:N``/``divide:N``, ``set`` (+ ``value``), ``rename``
  (+ ``to``), ``drop``, ``compute`` (+ ``expr``, e.g. ``"payload.price * payload.qty"``).
- ``enrich``: ``source`` (a projection's name, or a lookup table object
  ``{key: {field: value}}``; Python also takes a dict or a DataFrame), ``on`` (default
  ``entity_id``), ``fields`` (default all), ``into`` (default: into the payload).
- ``reduce``: ``aggregates`` (field or ``"*"`` -> count, count_distinct, sum, avg/mean,
  min, max, median, stddev, p0..p100), ``group_by``; the original ``field`` +
  ``function`` (+ ``group_by``) form is read too.
- ``window``: ``config`` {``window_type`` tumbling | hopping (``sliding``) | session,
  ``size_seconds``, ``slide_seconds`` (hopping), ``session_timeout_seconds`` (session),
  ``allowed_lateness_seconds`` (default 0), ``by``} (durations may be given as text in
  ``size``, ``slide``, ``gap``, ``allowed_lateness``), and ``aggregation`` (a reduce; a
  reduce right after the window is the same). Windows equal ``store.window``'s.
- ``branch``: ``outputs`` [{``name``, ``field``, ``op``, ``value``}, ...] (first match
  wins), ``default`` (an output name, or null to drop); the original ``field`` +
  ``branches`` {value: output} form is read too.

The chain is ``filter``/``map``/``enrich`` in any number, then at most one ``window``
(with its reduce), ``reduce`` or ``branch``. Records, field paths and comparison rules:
:mod:`~allsource_lab.pipelines.paths` and :mod:`~allsource_lab.pipelines.operators`;
watermark, late events and ``flush``: :mod:`~allsource_lab.pipelines.windowing`; errors
and stats: :mod:`~allsource_lab.pipelines.runtime`. In short: a window closes when the
watermark (greatest event time seen minus ``allowed_lateness``) reaches its end; an
event whose windows have all closed is dropped and counted as ``late``; an operator
that fails on a record counts an ``error`` and the pipeline goes on.
"""

from allsource_lab.pipelines.live import Pipelines
from allsource_lab.pipelines.pipeline import Pipeline

__all__ = ["Pipeline", "Pipelines"]
