"""Kernels for ``states()``: what every entity folds, and the fold itself over JSON text.

``states()`` folds every entity's visible payloads with JSON Merge Patch (RFC 7386). Done
in Python, each payload became a dict (``orjson.loads``, ~0.9 µs) to be merged and thrown
away (``merge_patch``, ~0.6 µs), and at 10M events 5M of them were held at once (2.1 GB;
all measured on the scale benchmark's stores). Most payloads fold more simply: where no
top-level value is null or lands as an object on an object, a fold is "the last value
wins, a key keeps the place it first had". :func:`fold_texts` does that on the payloads'
bytes where they lie (Arrow buffers, often memory-mapped files) and writes each entity's
state as one JSON object text, so Python decodes states rather than events (~0.3 µs a
payload in all, at 1M and 10M events).

A null deletes the key there too (a key deleted and given again moves to the end, as in
a dict). An entity whose payloads need more is left to Python, which gets its payload
texts instead, as elements of a JSON array: an object merged into an object, an object
value holding a null (merging drops it), a key given twice in one payload, a key
written with an escape (two spellings of one key), a text that is not an object.

Entities are folded in calls of at most ``limit`` visible payloads; one with more is
folded over several calls, the state reached so far passed on as JSON text. So what a
call holds is bounded, whatever the size of the history.
"""

from __future__ import annotations

import numpy as np
from numba.typed import List

from allsource_lab._kernels.jit import jit

__all__ = ["FALLBACK", "MERGED", "add_piece", "fold_positions", "fold_texts", "new_lists", "plan"]

MERGED = 0  # the entity's state is an element of the merged array
FALLBACK = 1  # its payloads are elements of the fallback array, for Python to merge

# Flags of one top-level member (_parse_object).
_NULL = 1  # the value is the literal null
_OBJECT = 2  # the value is an object
_INNER_NULL = 4  # a null somewhere inside the (object or array) value
_KEY_ESCAPE = 8  # the key holds a backslash escape (two spellings of one key)

# Columns of the entries table: one row per key of the entity being folded, in the
# order the state's dict holds them. _ALIVE: 1 in the state, 0 deleted (a null), -1
# superseded (deleted, then added again: a dict puts it at the end, so a new row does).
_KA, _KZ, _HASH, _VB, _VA, _VZ, _ALIVE, _OBJ, _TOUCH, _SLOT = range(10)
_COLUMNS = 10

_HASH_MASK = (1 << 40) - 1  # keeps hash * multiplier below 2**63: no overflow, jit or not


@jit
def new_lists(
    offsets32: np.ndarray, offsets64: np.ndarray, data: np.ndarray
) -> tuple[List, List, List]:
    """Lists of read-only int32 offsets, int64 offsets and uint8 texts for
    :func:`fold_texts`, holding one piece's (give an empty array for the offsets of the
    width a piece does not have).

    Made and filled in compiled code: ``List.empty_list`` and ``append`` called from
    Python compile their code in every new process (~0.5 s for the three lists), while
    these load from numba's cache (~0.13 s, measured in fresh processes).
    """
    a = List()
    b = List()
    c = List()
    a.append(offsets32)
    b.append(offsets64)
    c.append(data)
    return a, b, c


@jit
def add_piece(
    lists: tuple[List, List, List], offsets32: np.ndarray, offsets64: np.ndarray, data: np.ndarray
) -> None:
    """Append one more piece's arrays to the lists of :func:`new_lists`."""
    lists[0].append(offsets32)
    lists[1].append(offsets64)
    lists[2].append(data)


@jit
def plan(
    starts: np.ndarray,
    rows: np.ndarray,
    ts: np.ndarray,
    types: np.ndarray,
    cut: int,
    as_of: int,
    event_type: int,
    snap_starts: np.ndarray,
    snap_versions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What ``states`` must fold, for every entity at once (in memory by entity, not event).

    ``starts``/``rows`` are the entity postings as one CSR (each entity's positions
    ascending, so index ``i`` is version ``i + 1``); ``snap_starts``/``snap_versions``
    each entity's snapshot versions, ascending. An event is visible when its position is
    below ``cut`` and its event time at most ``as_of``. Returns, for the entities with a
    visible event (of ``event_type`` when >= 0), in entity number order: their numbers,
    last visible version, its event time, the snapshot version to start from (0: none;
    the newest at or below the *leading* count, the versions from 1 on that are all
    visible), and ``fold_ends``: entity ``k`` folds the visible versions after its
    snapshot, ``fold_ends[k + 1] - fold_ends[k]`` of them.
    """
    n_ent = len(starts) - 1
    entities = np.empty(n_ent, np.int64)
    version = np.empty(n_ent, np.int64)
    when = np.empty(n_ent, np.int64)
    snap = np.empty(n_ent, np.int64)
    fold_ends = np.zeros(n_ent + 1, np.int64)
    k = 0
    f = 0
    for e in range(n_ent):
        a = starts[e]
        b = starts[e + 1]
        leading = -1
        last = -1
        typed = event_type < 0
        for i in range(b - a):
            p = rows[a + i]
            if p >= cut:
                break  # positions ascend: every later one was recorded later still
            if ts[p] <= as_of:
                last = i
                if types[p] == event_type:
                    typed = True
            elif leading < 0:
                leading = i
        if last < 0 or not typed:
            continue
        if leading < 0:
            leading = last + 1
        s = 0
        for j in range(snap_starts[e], snap_starts[e + 1]):
            v = snap_versions[j]
            if v <= leading:
                s = v
        entities[k] = e
        version[k] = last + 1
        when[k] = ts[rows[a + last]]
        snap[k] = s
        for i in range(s, last + 1):
            if ts[rows[a + i]] <= as_of:
                f += 1
        k += 1
        fold_ends[k] = f
    return entities[:k], version[:k], when[:k], snap[:k], fold_ends[: k + 1]


@jit
def fold_positions(
    starts: np.ndarray,
    rows: np.ndarray,
    ts: np.ndarray,
    as_of: int,
    entities: np.ndarray,
    snap: np.ndarray,
    version: np.ndarray,
    ka: int,
    kb: int,
    first_i: int,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The positions planned entities ``ka..kb-1`` fold, at most ``limit`` of them.

    Entity ``ka`` starts at version index ``first_i`` when >= 0 (a call that stopped
    inside it), every other one after its snapshot. Returns (positions in fold order,
    how many of them each entity has, the version index to resume the last entity at,
    or -1 when every entity was finished).
    """
    out = np.empty(limit, np.int64)
    counts = np.zeros(kb - ka, np.int64)
    n = 0
    for k in range(ka, kb):
        a = starts[entities[k]]
        i = first_i if k == ka and first_i >= 0 else snap[k]
        last = version[k] - 1
        while i <= last:
            if n >= limit:
                return out[:n], counts[: k - ka + 1], i
            p = rows[a + i]
            i += 1
            if ts[p] <= as_of:
                out[n] = p
                n += 1
                counts[k - ka] += 1
    return out[:n], counts, -1


# -- reading JSON text -------------------------------------------------------------------
#
# The texts are JSON that orjson has read before (payloads are checked when appended;
# states were written by orjson or by this kernel), so the scanner only finds where
# members start and end. Anything it does not expect sends the entity to Python.


@jit
def _parse_object(d: np.ndarray, a: int, b: int, pairs: np.ndarray) -> int:
    """The members of the object text ``d[a:b]`` into ``pairs`` (key start and end with
    its quotes, value start and end, flags), in order; their count, or -1 when the text
    is not an object this scanner reads (or has more members than ``pairs`` rows).

    One function with its loops written out: split into helpers per token, the calls
    were not inlined and cost ~10% more (146 against 160 ns for a 111-byte payload of
    four members, measured).
    """
    i = a
    while i < b and (d[i] == 32 or d[i] == 10 or d[i] == 13 or d[i] == 9):
        i += 1
    if i >= b or d[i] != 123:  # "{"
        return -1
    i += 1
    n = 0
    while True:
        while i < b and (d[i] == 32 or d[i] == 10 or d[i] == 13 or d[i] == 9):
            i += 1
        if i >= b:
            return -1
        c = d[i]
        if c == 125:  # "}"
            if n:
                return -1  # right after a comma
            i += 1
            break
        if c != 34 or n >= pairs.shape[0]:
            return -1
        flags = 0
        pairs[n, 0] = i
        i += 1
        while i < b:  # the key
            c = d[i]
            if c == 34:
                break
            if c == 92:  # a backslash escapes the byte after it
                flags = _KEY_ESCAPE
                i += 1
            i += 1
        if i >= b:
            return -1
        i += 1
        pairs[n, 1] = i
        while i < b and (d[i] == 32 or d[i] == 10 or d[i] == 13 or d[i] == 9):
            i += 1
        if i >= b or d[i] != 58:  # ":"
            return -1
        i += 1
        while i < b and (d[i] == 32 or d[i] == 10 or d[i] == 13 or d[i] == 9):
            i += 1
        if i >= b:
            return -1
        pairs[n, 2] = i
        c = d[i]
        if c == 34:  # a string
            i = _string_end(d, i + 1, b)
            if i >= b:
                return -1
            i += 1
        elif c == 123 or c == 91:  # an object or an array, to its matching bracket
            if c == 123:
                flags |= _OBJECT
            depth = 0
            while i < b:
                c = d[i]
                if c == 34:
                    i = _string_end(d, i + 1, b)
                elif c == 123 or c == 91:
                    depth += 1
                elif c == 125 or c == 93:
                    depth -= 1
                    if depth == 0:
                        break
                elif c == 110:  # outside strings only the literal null has an "n"
                    flags |= _INNER_NULL
                i += 1
            if i >= b:
                return -1
            i += 1
        else:  # a number or a literal
            if c == 110:
                flags |= _NULL
            first = i
            while i < b:
                c = d[i]
                if c == 44 or c == 125 or c == 93 or c == 32 or c == 10 or c == 13 or c == 9:
                    break
                i += 1
            if i == first:
                return -1
        pairs[n, 3] = i
        pairs[n, 4] = flags
        n += 1
        while i < b and (d[i] == 32 or d[i] == 10 or d[i] == 13 or d[i] == 9):
            i += 1
        if i >= b:
            return -1
        c = d[i]
        i += 1
        if c == 125:
            break
        if c != 44:  # ","
            return -1
    while i < b and (d[i] == 32 or d[i] == 10 or d[i] == 13 or d[i] == 9):
        i += 1
    return n if i == b else -1


# -- the entity's state, key by key ------------------------------------------------------


@jit
def _string_end(d: np.ndarray, i: int, b: int) -> int:
    """Where the JSON string whose text starts at ``i`` (past its opening quote) ends:
    the index of its closing quote, or ``b`` if it runs past the end."""
    while i < b:
        c = d[i]
        if c == 34:
            break
        if c == 92:  # a backslash escapes the byte after it
            i += 1
        i += 1
    return i


@jit
def _key_hash(d: np.ndarray, a: int, b: int) -> int:
    h = 0
    for i in range(a, b):
        h = (h * 1000003 + int(d[i])) & _HASH_MASK
    return h


@jit
def _slot(h: int, mask: int) -> int:
    return (h ^ (h >> 17)) & mask


@jit
def _rehash(ent: np.ndarray, n_keys: int, size: int) -> np.ndarray:
    """A table of ``size`` slots (a power of two) holding the entries of ``0..n_keys-1``
    that are not superseded."""
    tab = np.full(size, -1, np.int64)
    mask = size - 1
    for e in range(n_keys):
        if ent[e, _ALIVE] < 0:
            continue
        s = _slot(ent[e, _HASH], mask)
        while tab[s] >= 0:
            s = (s + 1) & mask
        tab[s] = e
        ent[e, _SLOT] = s
    return tab


@jit
def _grown_rows(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.empty((max(rows, 2 * a.shape[0]), a.shape[1]), a.dtype)
    out[: a.shape[0]] = a
    return out


@jit
def _grown(a: np.ndarray, size: int, used: int) -> np.ndarray:
    out = np.empty(max(size, 2 * len(a)), a.dtype)
    out[:used] = a[:used]
    return out


@jit
def _object_size(ent: np.ndarray, n_keys: int) -> int:
    size = 2
    for e in range(n_keys):
        if ent[e, _ALIVE] > 0:
            size += ent[e, _KZ] - ent[e, _KA] + ent[e, _VZ] - ent[e, _VA] + 2
    return size


@jit
def _write_object(
    out: np.ndarray,
    at: int,
    ent: np.ndarray,
    n_keys: int,
    keys: np.ndarray,
    datas: list[np.ndarray],
    start_data: np.ndarray,
) -> int:
    """The entries as one JSON object written at ``out[at]``; returns its end."""
    out[at] = 123  # "{"
    at += 1
    first = at
    for e in range(n_keys):
        if ent[e, _ALIVE] <= 0:
            continue
        for x in range(ent[e, _KA], ent[e, _KZ]):
            out[at] = keys[x]
            at += 1
        out[at] = 58  # ":"
        at += 1
        src = start_data if ent[e, _VB] < 0 else datas[ent[e, _VB]]
        for x in range(ent[e, _VA], ent[e, _VZ]):
            out[at] = src[x]
            at += 1
        out[at] = 44  # ","
        at += 1
    if at == first:
        at += 1
    out[at - 1] = 125  # "}" over the last comma
    return at


# -- the fold ----------------------------------------------------------------------------


@jit
def fold_texts(
    starts: np.ndarray,
    rows: np.ndarray,
    ts: np.ndarray,
    as_of: int,
    row_of: np.ndarray,
    bases: np.ndarray,
    wide: np.ndarray,
    offsets32: list[np.ndarray],
    offsets64: list[np.ndarray],
    datas: list[np.ndarray],
    entities: np.ndarray,
    snap: np.ndarray,
    version: np.ndarray,
    ka: int,
    kb: int,
    first_i: int,
    limit: int,
    start_data: np.ndarray,
    start_offsets: np.ndarray,
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, int, np.ndarray, int, int, int]:
    """Fold planned entities ``ka..kb-1`` (see :func:`plan`) over at most ``limit``
    visible payloads.

    Payload ``p`` is text ``datas[k][offsets[row_of[p]]:offsets[row_of[p] + 1]]`` of
    the piece ``k`` with ``bases[k] <= p < bases[k + 1]`` (``bases``: each piece's first
    position, then the position after the last), its offsets ``offsets64[k]`` when
    ``wide[k]`` else ``offsets32[k]`` (see :func:`new_lists`). Entity ``j`` of the call
    (``ka + j``) starts from the state text
    ``start_data[start_offsets[j]:start_offsets[j + 1]]`` when that is not empty (a
    snapshot, or the state a call that stopped inside it reached) and, for ``j == 0``,
    at version index ``first_i`` when that is >= 0.

    Returns (``merged``, its end, ``status`` per entity, ``fallback``, its end, each
    fallback entity's payload count, the version index to resume the last entity at
    or -1 when all were finished, and where that entity's state text lies in
    ``merged``). ``merged[:end]`` is ``[`` then each finished MERGED entity's state
    followed by a comma; ``fallback[:end]`` is ``[`` then the payload texts of the
    FALLBACK entities, each followed by a comma. The stopped entity's state, if MERGED,
    is not in the array: it lies after its end.
    """
    m = kb - ka
    status = np.zeros(m, np.uint8)
    fb_counts = np.zeros(m, np.int64)
    out = np.empty(1 << 16, np.uint8)
    out[0] = 91  # "["
    out_n = 1
    fb = np.empty(1 << 12, np.uint8)
    fb[0] = 91
    fb_n = 1
    # The texts of the entity being folded: piece, start, end.
    where = np.empty((min(limit, 1 << 12), 3), np.int64)
    ent = np.zeros((16, _COLUMNS), np.int64)
    keys = np.empty(1 << 10, np.uint8)
    tab = np.full(32, -1, np.int64)
    pairs = np.empty((64, 6), np.int64)
    n_keys = 0
    count = 0
    piece = 0
    piece_lo = 0
    piece_hi = 0
    off32 = offsets32[0]
    off64 = offsets64[0]
    is_wide = False
    for j in range(m):
        k = ka + j
        a = starts[entities[k]]
        i_first = first_i if j == 0 and first_i >= 0 else snap[k]
        last = version[k] - 1

        # Where its texts are, first, in a loop of a few loads a position: their cache
        # misses overlap there, while each waited for the previous payload's parsing when
        # this was done text by text (at 1M events 345 against 265 ns a payload, at 10M
        # 380 against 300, measured).
        n_texts = 0
        stopped = -1
        i = i_first
        while i <= last:
            if count >= limit:
                stopped = i
                break
            p = rows[a + i]
            i += 1
            if ts[p] > as_of:
                continue
            count += 1
            if p < piece_lo or p >= piece_hi:
                piece = np.searchsorted(bases, p, side="right") - 1
                piece_lo = bases[piece]
                piece_hi = bases[piece + 1]
                is_wide = wide[piece] != 0
                if is_wide:
                    off64 = offsets64[piece]
                else:
                    off32 = offsets32[piece]
            r = row_of[p]
            if n_texts == where.shape[0]:
                where = _grown_rows(where, 2 * n_texts)
            where[n_texts, 0] = piece
            if is_wide:
                where[n_texts, 1] = off64[r]
                where[n_texts, 2] = off64[r + 1]
            else:
                where[n_texts, 1] = off32[r]
                where[n_texts, 2] = off32[r + 1]
            n_texts += 1

        # Then merge them, after the state it starts from.
        for e in range(n_keys):  # empty the slots the previous entity used
            tab[ent[e, _SLOT]] = -1
        n_keys = 0
        keys_n = 0
        n_prev = 0
        touch = 0
        merged = True
        sa = start_offsets[j]
        sb = start_offsets[j + 1]
        bid = -2
        d = start_data
        for t in range(-1 if sb > sa else 0, n_texts):
            if t < 0:
                bid = -1
                ta = sa
                tb = sb
            else:
                if where[t, 0] != bid:
                    bid = where[t, 0]
                    d = datas[bid]
                ta = where[t, 1]
                tb = where[t, 2]
            need = (tb - ta) // 5 + 1
            if pairs.shape[0] < need:
                pairs = np.empty((need, 6), np.int64)
                n_prev = 0
            n_pairs = _parse_object(d, ta, tb, pairs)
            if n_pairs < 0:
                merged = False
                break
            if n_keys + n_pairs > ent.shape[0]:
                ent = _grown_rows(ent, n_keys + n_pairs)
            key_bytes = 0
            for q in range(n_pairs):
                key_bytes += pairs[q, 1] - pairs[q, 0]
            if keys_n + key_bytes > len(keys):
                keys = _grown(keys, keys_n + key_bytes, keys_n)
            if 2 * (n_keys + n_pairs) > len(tab):
                size = len(tab)
                while size < 2 * (n_keys + n_pairs):
                    size *= 2
                tab = _rehash(ent, n_keys, size)
            touch += 1
            # Merge the members into the entries. A start text (bid < 0) is a state,
            # taken as it is; a patch deletes with null and must be one RFC 7386 merges
            # as "last value wins". Written out here rather than as a function taking the
            # arrays: 178 against 209 ns a payload of four members in all (measured).
            #
            # pairs[q, 5] holds the entry member q of the entity's previous text was
            # (-1: none; valid for q < n_prev): one entity's payloads mostly repeat their
            # keys in order, so a member is first compared with that entry's key and is
            # hashed only when it differs (177 against 211 ns a payload in all).
            mask = len(tab) - 1
            patch = bid >= 0
            for q in range(n_pairs):
                k0 = pairs[q, 0]
                k1 = pairs[q, 1]
                flags = pairs[q, 4]
                if flags & _KEY_ESCAPE:
                    merged = False
                    break
                found = -1
                h = -1
                s = -1
                guess = pairs[q, 5] if q < n_prev else -1
                if (
                    guess >= 0
                    and ent[guess, _ALIVE] >= 0
                    and ent[guess, _KZ] - ent[guess, _KA] == k1 - k0
                ):
                    same = True
                    at = ent[guess, _KA]
                    for x in range(k1 - k0):
                        if keys[at + x] != d[k0 + x]:
                            same = False
                            break
                    if same:
                        found = guess
                if found < 0:
                    h = _key_hash(d, k0, k1)
                    s = _slot(h, mask)
                    while True:
                        e = tab[s]
                        if e < 0:
                            break
                        if ent[e, _HASH] == h and ent[e, _KZ] - ent[e, _KA] == k1 - k0:
                            same = True
                            at = ent[e, _KA]
                            for x in range(k1 - k0):
                                if keys[at + x] != d[k0 + x]:
                                    same = False
                                    break
                            if same:
                                found = e
                                break
                        s = (s + 1) & mask
                pairs[q, 5] = found
                deletes = patch and flags & _NULL
                if patch:
                    if found >= 0 and ent[found, _TOUCH] == touch:
                        merged = False  # a key twice in one patch
                        break
                    if flags & _OBJECT:
                        if flags & _INNER_NULL:
                            merged = False  # merging would drop the null
                            break
                        if found >= 0 and ent[found, _ALIVE] > 0 and ent[found, _OBJ]:
                            merged = False  # an object into an object
                            break
                if found < 0:
                    found = n_keys
                    pairs[q, 5] = found
                    n_keys += 1
                    for x in range(k1 - k0):
                        keys[keys_n + x] = d[k0 + x]
                    ent[found, _KA] = keys_n
                    ent[found, _KZ] = keys_n + k1 - k0
                    keys_n += k1 - k0
                    ent[found, _HASH] = h
                    ent[found, _SLOT] = s
                    tab[s] = found
                    # A null for a key the state lacks still makes an entry (deleted), so
                    # that the key coming again in this patch is seen as twice.
                    ent[found, _ALIVE] = 0
                elif ent[found, _ALIVE] == 0 and not deletes:
                    # Deleted, now added again: dict.pop then a new key goes to the end.
                    old = found
                    found = n_keys
                    pairs[q, 5] = found
                    n_keys += 1
                    ent[found, _KA] = ent[old, _KA]
                    ent[found, _KZ] = ent[old, _KZ]
                    ent[found, _HASH] = ent[old, _HASH]
                    ent[found, _SLOT] = ent[old, _SLOT]
                    tab[ent[old, _SLOT]] = found
                    ent[old, _ALIVE] = -1
                ent[found, _TOUCH] = touch
                if deletes:
                    ent[found, _ALIVE] = 0
                    continue
                ent[found, _ALIVE] = 1
                ent[found, _VB] = bid
                ent[found, _VA] = pairs[q, 2]
                ent[found, _VZ] = pairs[q, 3]
                ent[found, _OBJ] = 1 if flags & _OBJECT else 0
            n_prev = n_pairs
            if not merged:
                break

        if merged:
            size = _object_size(ent, n_keys) + 1
            if out_n + size > len(out):
                out = _grown(out, out_n + size, out_n)
            end = _write_object(out, out_n, ent, n_keys, keys, datas, start_data)
            if stopped >= 0:
                return (
                    out,
                    out_n,
                    status[: j + 1],
                    fb,
                    fb_n,
                    fb_counts[: j + 1],
                    stopped,
                    out_n,
                    end,
                )
            out[end] = 44  # ","
            out_n = end + 1
            continue
        # Python merges this entity: its payload texts, as elements of the fallback array.
        status[j] = FALLBACK
        fb_counts[j] = n_texts
        bid = -2
        for t in range(n_texts):
            if where[t, 0] != bid:
                bid = where[t, 0]
                d = datas[bid]
            ta = where[t, 1]
            tb = where[t, 2]
            if fb_n + tb - ta + 1 > len(fb):
                fb = _grown(fb, fb_n + tb - ta + 1, fb_n)
            for y in range(ta, tb):
                fb[fb_n] = d[y]
                fb_n += 1
            fb[fb_n] = 44
            fb_n += 1
        if stopped >= 0:
            return out, out_n, status[: j + 1], fb, fb_n, fb_counts[: j + 1], stopped, 0, 0
    return out, out_n, status, fb, fb_n, fb_counts, -1, 0, 0
