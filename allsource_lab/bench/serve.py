"""The server's load benchmark: ``python -m allsource_lab.bench.serve`` (``make bench-serve``).

Starts ``allsource serve`` on loopback over a new store with default settings, and loads
it from separate processes:

- **single**: one event per ``POST /api/v1/events``, from ``wrk`` (Debian's package) with
  keep-alive connections, or from Python load processes when ``wrk`` is missing; requests
  a second and the p50/p99 latency. Goal: >= 10K requests/s with p99 <= 10 ms.
- **batch**: ``POST /api/v1/events/batch`` with batches of 10K events from two
  connections, as JSON and as Arrow IPC streams; events a second, timed until every
  event is sealed (the batches, then ``POST /api/v1/checkpoint``); an extra row each
  stops the clock at the last acknowledgement instead. Goal: >= 1M events/s.
- **server CPU**: the server process's own CPU time per single request (µs) and per
  10K events of batches (ms), read from /proc: on a shared machine the steadier figure.
- **fanout**: 10 WebSocket clients on ``/api/v1/events/stream`` while batches are posted;
  the time until every client has every event, and a check that each saw every event
  once, in sequence order. Goal: every client sees every event in order.

Nothing here asserts a speed; figures print with their goal and ``pass``/``miss``.
``--quick`` runs small sizes (the test suite checks that the benchmark runs),
``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]

GOALS = {
    "single_requests_per_s": 10_000,
    "single_p99_ms": 10.0,
    "batch_events_per_s": 1_000_000,
    "arrow_batch_events_per_s": 1_000_000,
}

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = '{"event_type":"bench.single","entity_id":"e' .. (counter % 1000) ..
               '","payload":{"n":' .. counter .. ',"note":"a small payload"}}'
  return wrk.format(nil, "/api/v1/events", nil, body)
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server:
    def __init__(self, store: Path) -> None:
        import httpx

        import allsource_lab as asl

        asl.open(store).close()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "allsource_lab.cli",
                "serve",
                str(store),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.send_signal(2)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- single-event POSTs -------------------------------------------------------------------


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _parse_ms(text: str) -> float:
    """A wrk latency (``812.00us``, ``1.20ms``, ``2.05s``, ``1.01m``) in milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise RuntimeError(f"wrk printed a latency this benchmark cannot read: {text!r}")
    return float(found.group(1)) * _WRK_UNITS[found.group(2)]


def _single_wrk(url: str, seconds: int, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # The latency distribution's own lines ("     50%    1.20ms"): a "75.50%" of the
    # thread statistics above them must not be taken for one.
    p50 = _parse_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _parse_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "tool": f"wrk -t2 -c{connections} -d{seconds}s",
        "single_requests_per_s": rate,
        "single_p50_ms": p50,
        "single_p99_ms": p99,
        "single_non_2xx": int(bad.group(1)) if bad else 0,
    }


def _python_poster(url: str, seconds: float, worker: int, out: Any) -> None:
    import httpx

    latencies = []
    with httpx.Client(base_url=url) as http:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            body = {
                "event_type": "bench.single",
                "entity_id": f"w{worker}-{n % 1000}",
                "payload": {"n": n, "note": "a small payload"},
            }
            started = time.perf_counter()
            http.post("/api/v1/events", json=body)
            latencies.append(time.perf_counter() - started)
    out.put(latencies)


def _single_python(url: str, seconds: int, processes: int) -> dict[str, Any]:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    workers = [
        multiprocessing.get_context("spawn").Process(
            target=_python_poster, args=(url, seconds, w, queue)
        )
        for w in range(processes)
    ]
    for w in workers:
        w.start()
    latencies = sorted(x for _ in workers for x in queue.get())
    for w in workers:
        w.join()
    return {
        "tool": f"python load processes x{processes} (no wrk)",
        "single_requests_per_s": len(latencies) / seconds,
        "single_p50_ms": 1000 * latencies[len(latencies) // 2],
        "single_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "single_non_2xx": None,
    }


# -- batches ------------------------------------------------------------------------------


def _batch_body(batch: int, offset: int) -> bytes:
    rows = [
        {
            "event_type": "bench.batch",
            "entity_id": f"b{(offset + i) % 10_000}",
            "payload": {"n": offset + i, "note": "a small payload"},
        }
        for i in range(batch)
    ]
    return json.dumps({"events": rows}).encode()


def _arrow_body(batch: int, offset: int) -> bytes:
    import pyarrow as pa

    table = pa.table(
        {
            "event_type": ["bench.batch"] * batch,
            "entity_id": [f"b{(offset + i) % 10_000}" for i in range(batch)],
            "payload": [
                json.dumps({"n": offset + i, "note": "a small payload"}) for i in range(batch)
            ],
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body: bytes = sink.getvalue().to_pybytes()
    return body


def _batch_poster(
    url: str, bodies: int, batch: int, worker: int, arrow: bool, go: Any, out: Any
) -> None:
    import httpx

    make = _arrow_body if arrow else _batch_body
    kind = "application/vnd.apache.arrow.stream" if arrow else "application/json"
    prepared = [make(batch, (worker * bodies + k) * batch) for k in range(bodies)]
    with httpx.Client(base_url=url, timeout=120) as http:
        out.put("ready")
        go.wait()  # every poster has its bodies ready: the clock starts now
        sent = 0
        for body in prepared:
            r = http.post("/api/v1/events/batch", content=body, headers={"Content-Type": kind})
            sent += r.json()["count"] if r.status_code == 201 else 0
    out.put(sent)


def _batches(
    url: str, batches: int, batch: int, arrow: bool, connections: int = 2
) -> dict[str, Any]:
    import httpx

    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    go = context.Event()
    per = max(1, batches // connections)
    workers = [
        context.Process(target=_batch_poster, args=(url, per, batch, w, arrow, go, queue))
        for w in range(connections)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        assert queue.get() == "ready"
    go.set()
    started = time.perf_counter()
    sent = sum(queue.get() for _ in workers)
    acknowledged = time.perf_counter() - started
    # The clock runs on until every event is sealed into a segment: the checkpoint waits
    # for the seals the batches started and seals what is left in the tail.
    httpx.post(url + "/api/v1/checkpoint", timeout=120).raise_for_status()
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    prefix = "arrow_batch" if arrow else "batch"
    return {
        f"{prefix}_size": batch,
        f"{prefix}_events": sent,
        f"{prefix}_events_per_s": sent / elapsed,
        f"{prefix}_acknowledged_events_per_s": sent / acknowledged,
    }


# -- WebSocket fan-out --------------------------------------------------------------------


async def _follow(ws_url: str, total: int, after: int) -> tuple[bool, float]:
    from websockets.asyncio.client import connect

    expected = after + 1
    in_order = True
    async with connect(f"{ws_url}/api/v1/events/stream?after={after}", max_size=None) as ws:
        while expected <= after + total:
            sequence = json.loads(await ws.recv())["sequence"]
            in_order &= sequence == expected
            expected += 1
    return in_order, time.perf_counter()


def _fanout_clients(ws_url: str, clients: int, total: int, after: int, out: Any) -> None:
    async def main() -> list[tuple[bool, float]]:
        return await asyncio.gather(*(_follow(ws_url, total, after) for _ in range(clients)))

    out.put(asyncio.run(main()))


def _fanout(url: str, clients: int, total: int, batch: int) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, timeout=120) as http:
        after = http.get("/api/v1/stats").json()["last_sequence"]
        context = multiprocessing.get_context("spawn")
        queue: Any = context.Queue()
        ws_url = url.replace("http://", "ws://")
        watcher = context.Process(
            target=_fanout_clients, args=(ws_url, clients, total, after, queue)
        )
        watcher.start()
        time.sleep(3.0)  # the clients connect
        started = time.perf_counter()
        for offset in range(0, total, batch):
            http.post(
                "/api/v1/events/batch",
                content=_batch_body(min(batch, total - offset), offset),
                headers={"Content-Type": "application/json"},
            )
        results = queue.get()
        watcher.join()
    last = max(t for _, t in results)
    return {
        "fanout_clients": clients,
        "fanout_events": total,
        "fanout_all_in_order": all(ok for ok, _ in results),
        "fanout_seconds": last - started,
        "fanout_deliveries_per_s": clients * total / (last - started),
    }


# -- running ------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, from /proc; None where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per(pid: int, before: float | None, count: float, scale: float) -> float | None:
    """The server's CPU time since ``before`` per ``count`` things, times ``scale``.

    Its own CPU time, unlike rates, hardly depends on what else the machine runs: the
    figure to compare runs on a shared machine by (its resolution is a clock tick, 10 ms).
    """
    after = _cpu_seconds(pid)
    if before is None or after is None or not count:
        return None
    return (after - before) / count * scale


def run(quick: bool = False) -> dict[str, Any]:
    """Run every section once; returns the figures."""
    folder = Path(tempfile.mkdtemp(prefix="allsource-bench-serve-"))
    server = _Server(folder / "bench.events")
    figures: dict[str, Any] = {"cpus": os.cpu_count()}
    pid = server.process.pid
    try:
        seconds = 2 if quick else 10
        used = _cpu_seconds(pid)
        if shutil.which("wrk"):
            figures |= _single_wrk(server.url, seconds, 8 if quick else 64)
        else:
            figures |= _single_python(server.url, seconds, 2)
        requests = figures["single_requests_per_s"] * seconds
        figures["single_server_cpu_us"] = _cpu_per(pid, used, requests, 1e6)
        batches, batch = (2, 1000) if quick else (100, 10_000)
        used = _cpu_seconds(pid)
        figures |= _batches(server.url, batches, batch, arrow=False)
        figures["batch_server_cpu_ms_per_10k"] = _cpu_per(pid, used, figures["batch_events"], 1e7)
        used = _cpu_seconds(pid)
        figures |= _batches(server.url, batches, batch, arrow=True)
        events = figures["arrow_batch_events"]
        figures["arrow_batch_server_cpu_ms_per_10k"] = _cpu_per(pid, used, events, 1e7)
        figures |= _fanout(server.url, 10, 2000 if quick else 100_000, 1000)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def _report(figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        goal = GOALS.get(key)
        verdict = ""
        if goal is not None and isinstance(value, float | int):
            ok = value <= goal if key.endswith("_ms") else value >= goal
            verdict = f"  (goal {'<=' if key.endswith('_ms') else '>='} {goal:,}: "
            verdict += "pass)" if ok else "miss)"
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:28} {shown}{verdict}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m allsource_lab.bench.serve")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(quick=args.quick)
    _report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
