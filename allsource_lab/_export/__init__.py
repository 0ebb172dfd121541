"""The store's history handed to other engines: a Delta Lake table (:mod:`.delta`).

An export reads the sealed history through the store's feed (``allsource_lab._feed``),
never its parts, and writes a table of its own: the store's files stay the store's.
"""
