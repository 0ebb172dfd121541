"""``WS /api/v1/events/stream``: live events over a WebSocket, resumable without gaps.

A client connects with optional ``event_type`` (one type, or several separated by
commas), ``entity_id`` and ``after``: the last sequence it has seen (0, the default,
streams from the first event; the ``last_sequence`` of ``GET /api/v1/stats`` streams only
events appended from then on).
The server sends every matching event with a sequence above ``after``, oldest first, one
JSON object per text message (the shape of ``GET /api/v1/events/query``'s events). After
a disconnect, reconnecting with ``after`` = the last sequence received goes on with the
next event: no gap and no duplicate.

Each connection reads from the store's feed (``store.feed.batch``) from its own position,
so a slow client delays only itself. One hub per store follows the store
(``feed.follow``) while any client is connected and wakes the connections after each
append. A client is only sent events that are durable (the connection calls
``feed.flush()`` before reading up to the head it saw): an event it has received is
never taken back by a crash of the server, whatever the fsync policy.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from allsource_lab.errors import AllSourceError, InvalidArgument
from allsource_lab.server.render import event_object

if TYPE_CHECKING:
    from allsource_lab.events import Event
    from allsource_lab.store import EventStore

__all__ = ["StreamHub", "stream_events"]

# Events read from the store per round; a round is sent before the next is read.
_ROUND = 2000


class StreamHub:
    """Wakes a store's WebSocket connections when events are appended."""

    def __init__(self, store: EventStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self.clients = 0
        self._changed = asyncio.Event()
        self._pending = False

    def _on_append(self, last_sequence: int) -> None:
        # Called on the appending thread after every append: one wake-up at a time is
        # scheduled, however many appends arrive before the loop runs it.
        if not self._pending:
            self._pending = True
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._pending = False
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def join(self) -> None:
        if self.clients == 0:
            self.store.feed.follow(self._on_append)
        self.clients += 1

    def leave(self) -> None:
        self.clients -= 1
        if self.clients == 0:
            self.store.feed.unfollow(self._on_append)

    async def wait_past(self, position: int) -> None:
        """Return once the store holds an event after ``position`` (or it closed)."""
        feed = self.store.feed
        while feed.head() <= position and not feed.closed:
            changed = self._changed
            # A timeout so that a store closed without another append is noticed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 1.0)


def _read(
    store: EventStore, after: int, types: tuple[str, ...] | None, entity: str | None
) -> tuple[list[bytes], int]:
    """The next round of matching events after ``after`` (durable ones only), as JSON
    messages, and the position the round reached."""
    feed = store.feed
    head = feed.head()
    if head <= after:
        return [], after
    feed.flush()  # what a client sees, a crash cannot take back
    through = min(head, after + _ROUND) if types is None else head
    batch = feed.batch(after, _ROUND, through=through, event_types=types)
    if len(batch) == 0:
        return [], through
    events: list[Event] = list(batch)
    messages = [
        orjson.dumps(event_object(e)) for e in events if entity is None or e.entity_id == entity
    ]
    reached = batch.last_sequence if len(batch) == _ROUND else through
    return messages, reached


def stream_options(params: Any) -> tuple[int, tuple[str, ...] | None, str | None]:
    """``after``, the event types and the entity asked for by a stream's query string."""
    after_text = params.get("after", "0")
    try:
        after = int(after_text)
    except ValueError:
        raise InvalidArgument(f"after must be a sequence number, not {after_text!r}") from None
    if not 0 <= after < 2**63:
        raise InvalidArgument(f"after must be from 0 to 2**63 - 1, not {after}")
    types_text = params.get("event_type")
    types = None
    if types_text:
        types = tuple(t for t in types_text.split(",") if t)
    entity = params.get("entity_id") or None
    return after, types, entity


async def stream_events(
    websocket: WebSocket,
    hub: StreamHub,
    after: int,
    types: tuple[str, ...] | None,
    entity: str | None,
) -> None:
    """Send the store's events after ``after`` to an accepted WebSocket until either side
    goes away; closes with 1001 when the store closes, 1011 if it fails."""
    store = hub.store
    position = after
    hub.join()
    closed_by_client = asyncio.create_task(_client_gone(websocket))
    try:
        while not closed_by_client.done():
            waiting = asyncio.create_task(hub.wait_past(position))
            done, _ = await asyncio.wait(
                {waiting, closed_by_client}, return_when=asyncio.FIRST_COMPLETED
            )
            if closed_by_client in done:
                waiting.cancel()
                break
            if store.feed.closed:
                await websocket.close(1001, "the store closed")
                break
            messages, position = await run_in_threadpool(_read, store, position, types, entity)
            for message in messages:
                await websocket.send_text(message.decode())
    except WebSocketDisconnect:
        pass
    except AllSourceError as exc:
        with contextlib.suppress(Exception):
            await websocket.close(1011, str(exc)[:120])
    finally:
        closed_by_client.cancel()
        hub.leave()


async def _client_gone(websocket: WebSocket) -> None:
    """Returns when the client disconnects (messages it sends are ignored)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
