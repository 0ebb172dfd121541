"""The benchmark (``python -m allsource_lab.bench``, ``make bench``) and the soak run.

Imports run one way: :mod:`~allsource_lab.bench.run` (options, the table, the JSON report)
calls the groups of figures — :mod:`~allsource_lab.bench.writes`,
:mod:`~allsource_lab.bench.peers`, :mod:`~allsource_lab.bench.reads`,
:mod:`~allsource_lab.bench.schemas`, :mod:`~allsource_lab.bench.projections`,
:mod:`~allsource_lab.bench.windows` — and every one of them builds on
:mod:`~allsource_lab.bench.common` (the figures' names, units and targets, the sizes, the
data and the timing helpers), which imports none of them. :mod:`~allsource_lab.bench.soak`
stands alone (``python -m allsource_lab.bench.soak``).
"""
