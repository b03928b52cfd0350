#!/usr/bin/env python3
"""Fans joining one concert's line from both sides of a network partition (scripts/partition.sh).

  partition_probe.py fans BASE N OUT           signs up and logs in N fans; their access tokens to OUT
  partition_probe.py join BASE CONCERT FANS SECONDS OUT
                                               one fresh fan joins every 50 ms through BASE for
                                               SECONDS; each answer (time, status, code, queue
                                               token) as a JSON line to OUT
  partition_probe.py verify BASE JOINS...      asks BASE where each accepted join stands now;
                                               prints one JSON summary per file
Only the standard library: a fresh machine has python3 but maybe no pip packages.
"""
import json
import sys
import time
import urllib.error
import urllib.request
import uuid


def call(method, url, body=None, headers=None, timeout=5.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        return 0, {"code": "transport: %s" % getattr(error, "reason", error)}


def fans(base, n, out):
    tokens = []
    for _ in range(int(n)):
        email = "fan-%s@partition.test" % uuid.uuid4().hex[:12]
        status, body = call("POST", base + "/api/v1/auth/signup",
                            {"email": email, "password": "fan-password-1", "name": "Fan"})
        assert status == 201, (status, body)
        status, body = call("POST", base + "/api/v1/auth/login",
                            {"email": email, "password": "fan-password-1"})
        assert status == 200, (status, body)
        tokens.append(body["access_token"])
    with open(out, "w") as f:
        f.write("\n".join(tokens))


def join(base, concert, fans_file, seconds, out):
    tokens = [t for t in open(fans_file).read().split("\n") if t]
    started = time.time()
    with open(out, "w") as f:
        for token in tokens:
            if time.time() - started >= float(seconds):
                break
            sent = time.time()
            status, body = call("POST", "%s/api/v1/concerts/%s/queue" % (base, concert),
                                headers={"authorization": "Bearer " + token}, timeout=3.0)
            body = body if isinstance(body, dict) else {}
            f.write(json.dumps({"t": sent, "status": status, "code": body.get("code"),
                                "queue_token": body.get("queue_token")}) + "\n")
            f.flush()
            time.sleep(max(0.0, 0.05 - (time.time() - sent)))


def verify(base, files):
    for path in files:
        answers = [json.loads(line) for line in open(path) if line.strip()]
        accepted = [a for a in answers if a["status"] == 200]
        now = {}
        lost = []
        for a in accepted:
            status, body = call("GET", base + "/api/v1/queue/status",
                                headers={"x-queue-token": a["queue_token"]})
            key = body.get("status") if status == 200 and isinstance(body, dict) else "http %d" % status
            now[key] = now.get(key, 0) + 1
            if key == "expired":
                lost.append(a["t"])
        refused = {}
        for a in answers:
            if a["status"] != 200:
                key = "%d %s" % (a["status"], a["code"] or "")
                refused[key] = refused.get(key, 0) + 1
        times = [a["t"] for a in accepted]
        print(json.dumps({
            "file": path, "joins_sent": len(answers), "accepted": len(accepted),
            "refused": refused, "accepted_now": now,
            "accepted_from": min(times) if times else None, "accepted_until": max(times) if times else None,
            "lost_from": min(lost) if lost else None, "lost_until": max(lost) if lost else None,
        }))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "fans":
        fans(*args)
    elif command == "join":
        join(*args)
    elif command == "verify":
        verify(args[0], args[1:])
    else:
        sys.exit(__doc__)
