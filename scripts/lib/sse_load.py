#!/usr/bin/env python3
"""Holds N queue fans on the API for a measured window, either as open GET /queue/events
streams (push) or as clients polling GET /queue/status at the poll_after_seconds the server
asks for (poll), and reports what it cost: the API process's RSS and CPU seconds, and Redis's
commands per second (INFO stats) over the window. Standard library only (asyncio sockets).

  sse_load.py MODE TOKENS_FILE HOST PORT API_PID REDIS_PORT [--fans N] [--window S]
"""
import argparse
import asyncio
import json
import subprocess
import sys
import time

TICKS = 100  # /proc/<pid>/stat is in clock ticks (USER_HZ) on Linux


def proc_cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def redis_commands(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "stats"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":")[1])
    return 0


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return status, length, chunked


async def read_chunk(reader):
    size = int((await reader.readline()).strip(), 16)
    data = await reader.readexactly(size + 2)
    return data[:-2] if size else None


async def push(host, port, token, opened, events, stop):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /api/v1/queue/events HTTP/1.1\r\nHost: {host}\r\nX-Queue-Token: {token}\r\n\r\n".encode()
    )
    await writer.drain()
    status, _, chunked = await read_head(reader)
    if status != 200 or not chunked:
        raise RuntimeError(f"GET /queue/events answered {status}")
    first = True
    while not stop.is_set():
        chunk = await read_chunk(reader)
        if chunk is None:
            break
        if b"event: status" in chunk:
            events[0] += 1
            if first:
                first = False
                opened.release()
    writer.close()


async def poll(host, port, token, opened, events, stop):
    reader, writer = await asyncio.open_connection(host, port)
    first = True
    while not stop.is_set():
        writer.write(f"GET /api/v1/queue/status HTTP/1.1\r\nHost: {host}\r\nX-Queue-Token: {token}\r\n\r\n".encode())
        await writer.drain()
        status, length, _ = await read_head(reader)
        body = await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"GET /queue/status answered {status}: {body[:200]!r}")
        events[0] += 1
        if first:
            first = False
            opened.release()
        wait = json.loads(body)["poll_after_seconds"]
        try:
            await asyncio.wait_for(stop.wait(), timeout=wait)
        except asyncio.TimeoutError:
            pass
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["push", "poll"])
    p.add_argument("tokens")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("api_pid", type=int)
    p.add_argument("redis_port", type=int)
    p.add_argument("--fans", type=int, default=10000)
    p.add_argument("--window", type=float, default=60.0)
    a = p.parse_args()
    tokens = [t for t in open(a.tokens).read().split("\n") if t][: a.fans]
    rss_before, cpu_before = proc_rss_mib(a.api_pid), proc_cpu_seconds(a.api_pid)
    opened = asyncio.Semaphore(0)
    events, stop = [0], asyncio.Event()
    client = push if a.mode == "push" else poll
    started = time.monotonic()
    tasks = []
    # Connect in waves, as fans arrive; the API's accept queue is finite.
    for i, token in enumerate(tokens):
        tasks.append(asyncio.create_task(client(a.host, a.port, token, opened, events, stop)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    for _ in tokens:
        await asyncio.wait_for(opened.acquire(), timeout=300)
    ramp = time.monotonic() - started
    # The measured window: every fan connected and served once.
    events[0] = 0
    cpu0, cmds0, t0 = proc_cpu_seconds(a.api_pid), redis_commands(a.redis_port), time.monotonic()
    await asyncio.sleep(a.window)
    cpu1, cmds1, t1 = proc_cpu_seconds(a.api_pid), redis_commands(a.redis_port), time.monotonic()
    rss = proc_rss_mib(a.api_pid)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    span = t1 - t0
    print(
        json.dumps(
            {
                "mode": a.mode,
                "fans": len(tokens),
                "ramp_seconds": round(ramp, 1),
                "window_seconds": round(span, 1),
                "api_rss_mib_before": round(rss_before, 1),
                "api_rss_mib": round(rss, 1),
                "api_cpu_seconds_per_second": round((cpu1 - cpu0) / span, 3),
                "api_cpu_seconds_ramp": round(cpu0 - cpu_before, 1),
                "redis_commands_per_second": round((cmds1 - cmds0) / span, 1),
                "answers_per_second": round(events[0] / span, 1),
                "failed_clients": len(failed),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
