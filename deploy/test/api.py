#!/usr/bin/env python3
"""HTTP checks of a running Happening deployment, for scripts/test-deploy (standard library
only). Each subcommand checks one thing and exits 1, saying what was wrong, when it does not
hold; every wait has a deadline.

  api.py ready URL...                      every /healthz answers "ok", every /readyz "ready"
  api.py demo URL TOKEN                    organization, event, booking: confirmed
  api.py in-flight URL TOKEN -- CMD...     a booking in flight when CMD (a SIGTERM) runs is answered
  api.py seed URL ADMIN STATE TOKEN...     organization with these members, event of --slots
  api.py flash STATE URL...                --bookings one-seat bookings at once over the URLs
  api.py check STATE URL...                the flash sale's event as it ended, through each URL
  api.py book-new STATE URL                a new event of the organization: a booking confirmed
  api.py delivered STATE URL               every member's notifications turn `delivered`

STATE is a JSON file the seed writes and the other steps read (tokens, ids, outcomes).
"""

import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

REQUEST_TIMEOUT_S = 30


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def call(base, method, path, token=None, body=None, timeout=REQUEST_TIMEOUT_S):
    """One request on a new connection: (status, parsed JSON body or None)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        res = conn.getresponse()
        raw = res.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return res.status, parsed


def ok(base, method, path, token, body=None, want=200):
    status, got = call(base, method, path, token, body)
    check(status == want, f"{method} {base}{path}: {status} {got}, wanted {want}")
    return got


def until(what, deadline_s, probe, interval_s=0.5):
    """Calls probe() until it returns something true; fails with its last answer."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            last = probe()
            if last and last[0]:
                return last[0]
        except (OSError, http.client.HTTPException) as e:
            last = (None, repr(e))
        if time.monotonic() > end:
            raise Failed(f"{what}: not within {deadline_s} s; last: {last[1] if last else None}")
        time.sleep(interval_s)


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, state):
    with open(path, "w") as f:
        json.dump(state, f)


def cmd_ready(a):
    for url in a.urls:
        def probe(url=url):
            alive = call(url, "GET", "/healthz", timeout=5)
            if alive != (200, {"status": "ok"}):
                return (False, ("/healthz",) + alive)
            status, body = call(url, "GET", "/readyz", timeout=5)
            return (status == 200 and isinstance(body, dict) and body.get("status") == "ready", ("/readyz", status, body))

        until(f"{url}: /healthz ok and /readyz ready", a.timeout, probe)
        print(f"ready: {url} (/healthz ok, /readyz ready)")


def new_event(base, token, org, name, slots):
    body = {"org_id": org, "name": name, "event_date": "2030-06-01T19:00:00Z", "total_slots": slots}
    return ok(base, "POST", "/events", token, body, 201)["id"]


def cmd_demo(a):
    org = ok(a.url, "POST", "/organizations", a.token, {"name": "Demo"}, 201)["id"]
    ev = new_event(a.url, a.token, org, "Demo", 5)
    b = ok(a.url, "POST", "/bookings", a.token, {"event_id": ev, "seats": 2}, 201)
    check(b["status"] == "confirmed" and b["seat_numbers"] == [1, 2], f"booking: {b}")
    seats = ok(a.url, "GET", f"/events/{ev}/seats", a.token)
    check(seats["taken"] == [1, 2] and seats["available_slots"] == 3, f"seat map: {seats}")
    print(f"booked: {b['id']} seats {b['seat_numbers']} of event {ev}")


def cmd_in_flight(a):
    """A booking whose body is sent only after the shutdown began: the server answers it
    (`Expect: 100-continue` tells when the handler reads the body, so the request is surely
    in flight when CMD runs)."""
    org = ok(a.url, "POST", "/organizations", a.token, {"name": "Shutdown"}, 201)["id"]
    ev = new_event(a.url, a.token, org, "Shutdown", 2)
    u = urllib.parse.urlsplit(a.url)
    body = json.dumps({"event_id": ev, "seats": 2}).encode()
    conn = socket.create_connection((u.hostname, u.port), timeout=REQUEST_TIMEOUT_S)
    head = (
        f"POST /bookings HTTP/1.1\r\nhost: {u.netloc}\r\nauthorization: Bearer {a.token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nexpect: 100-continue\r\n\r\n"
    )
    conn.sendall(head.encode())
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        chunk = conn.recv(1)
        check(chunk, f"no 100 Continue: {interim!r}")
        interim += chunk
    check(interim.startswith(b"HTTP/1.1 100"), f"interim answer: {interim!r}")
    check(a.command, "no command to run")
    subprocess.run(a.command, check=True, stdout=subprocess.DEVNULL)

    # Shutdown has begun once new connections are refused (or reset).
    def refused():
        try:
            call(a.url, "GET", "/healthz", timeout=2)
            return (False, "still accepting")
        except (OSError, http.client.HTTPException) as e:
            return (True, repr(e))

    until("the listener to close", 30, refused, 0.1)
    conn.sendall(body)
    answer = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        answer += chunk
    conn.close()
    text = answer.decode("utf-8", "replace")
    check(text.startswith("HTTP/1.1 201"), f"the booking in flight: {text!r}")
    b = json.loads(text.split("\r\n\r\n", 1)[1])
    check(b["status"] == "confirmed" and b["seat_numbers"] == [1, 2], f"booking: {b}")
    print(f"in flight during the shutdown, answered: 201 {b['status']} seats {b['seat_numbers']}")


def cmd_seed(a):
    admin = a.admin
    org = ok(a.url, "POST", "/organizations", admin, {"name": "Flash"}, 201)["id"]
    members = []
    for tok in a.tokens:
        uid = ok(a.url, "POST", "/users", tok)["id"]
        ok(a.url, "POST", f"/organizations/{org}/members", admin, {"user_id": uid, "role": "user"}, 201)
        members.append(tok)
    ev = new_event(a.url, admin, org, "Flash sale", a.slots)
    save(a.state, {"admin": admin, "org": org, "members": members, "event": ev, "slots": a.slots})
    print(f"seeded: organization {org}, {len(members)} members, event {ev} of {a.slots} seats")


def cmd_flash(a):
    st = load(a.state)
    n, urls, members = a.bookings, a.urls, st["members"]
    results = [None] * n
    start = threading.Barrier(n)

    def book(i):
        try:
            start.wait()
            results[i] = call(urls[i % len(urls)], "POST", "/bookings", members[i % len(members)], {"event_id": st["event"], "seats": 1})
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            results[i] = (None, repr(e))

    threads = [threading.Thread(target=book, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    bad = [r for r in results if r[0] != 201]
    check(not bad, f"{len(bad)} of {n} bookings not 201, e.g. {bad[:3]}")
    confirmed = [b["id"] for s, b in results if b["status"] == "confirmed"]
    waiting = [b["id"] for s, b in results if b["status"] == "waiting"]
    check(len(confirmed) + len(waiting) == n, "every booking confirmed or waiting")
    st.update(confirmed=confirmed, waiting=waiting)
    save(a.state, st)
    print(f"flash sale: {n} bookings over {len(urls)} replicas in {elapsed:.1f} s: {len(confirmed)} confirmed, {len(waiting)} waiting")
    check_event(st, urls)


def waitlist(base, token, ev):
    out, offset = [], 0
    while True:
        page = ok(base, "GET", f"/events/{ev}/waitlist?limit=500&offset={offset}", token)
        out += page
        if len(page) < 500:
            return out
        offset += 500


def check_event(st, urls):
    """The flash sale's event as it ended: no seat twice, none beyond the event, every seat
    taken by the confirmed bookings, the queue exactly the waiting bookings numbered 1..N."""
    slots, ev, admin = st["slots"], st["event"], st["admin"]
    want_confirmed = min(slots, len(st["confirmed"]) + len(st["waiting"]))
    check(len(st["confirmed"]) == want_confirmed, f"{len(st['confirmed'])} confirmed, wanted {want_confirmed}")
    for url in urls:
        seats = ok(url, "GET", f"/events/{ev}/seats", admin)
        taken = seats["taken"]
        check(len(set(taken)) == len(taken), f"{url}: a seat taken twice: {taken}")
        check(sorted(taken) == list(range(1, want_confirmed + 1)), f"{url}: seats taken {taken}")
        check(seats["total"] == slots and not seats["held"], f"{url}: seat map {seats}")
        e = ok(url, "GET", f"/events/{ev}", admin)
        check(e["booked_slots"] <= e["total_slots"], f"{url}: oversold: {e}")
        check(e["booked_slots"] == want_confirmed and e["waiting_count"] == len(st["waiting"]), f"{url}: event {e}")
        queue = waitlist(url, admin, ev)
        ids = [w["id"] for w in queue]
        check(sorted(ids) == sorted(st["waiting"]), f"{url}: waitlist holds {len(ids)} bookings, not the {len(st['waiting'])} waiting")
        numbers = [w["waiting_number"] for w in queue]
        check(numbers == list(range(1, len(queue) + 1)), f"{url}: waiting numbers {numbers[:10]}...")
        for bid in st["confirmed"][:5] + st["waiting"][:5]:
            b = ok(url, "GET", f"/bookings/{bid}", admin)
            check(b["status"] in ("confirmed", "waiting"), f"{url}: booking {b}")
    print(f"event {ev}: {want_confirmed} distinct seats of {slots} taken, waitlist exactly the {len(st['waiting'])} waiting, numbered 1..{len(st['waiting'])}, on {len(urls)} replica(s)")


def cmd_check(a):
    check_event(load(a.state), a.urls)


def cmd_book_new(a):
    st = load(a.state)
    ev = new_event(a.url, st["admin"], st["org"], a.name, 10)
    b = ok(a.url, "POST", "/bookings", st["admin"], {"event_id": ev, "seats": 1}, 201)
    check(b["status"] == "confirmed", f"booking: {b}")
    print(f"new booking on {a.url}: {b['status']}, seats {b['seat_numbers']}")


def cmd_delivered(a):
    """Every notification of the admin and the members reaches `delivered` (relayed to
    RabbitMQ, handled by the worker)."""
    st = load(a.state)

    def probe():
        total, pending = 0, {}
        for tok in [st["admin"]] + st["members"]:
            notes = ok(a.url, "GET", "/notifications?limit=500", tok)
            for n in notes:
                total += 1
                if n["status"] != "delivered":
                    pending[n["status"]] = pending.get(n["status"], 0) + 1
        return (total > 0 and not pending, f"{total} notifications, not delivered: {pending}")

    until("every notification delivered", a.timeout, probe, 1)
    print("notifications: every one delivered")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("ready")
    s.add_argument("--timeout", type=int, default=120)
    s.add_argument("urls", nargs="+")
    s.set_defaults(fn=cmd_ready)
    s = sub.add_parser("demo")
    s.add_argument("url")
    s.add_argument("token")
    s.set_defaults(fn=cmd_demo)
    s = sub.add_parser("in-flight")
    s.add_argument("url")
    s.add_argument("token")
    s.add_argument("command", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_in_flight)
    s = sub.add_parser("seed")
    s.add_argument("--slots", type=int, default=100)
    s.add_argument("url")
    s.add_argument("admin")
    s.add_argument("state")
    s.add_argument("tokens", nargs="+")
    s.set_defaults(fn=cmd_seed)
    s = sub.add_parser("flash")
    s.add_argument("--bookings", type=int, default=300)
    s.add_argument("state")
    s.add_argument("urls", nargs="+")
    s.set_defaults(fn=cmd_flash)
    s = sub.add_parser("check")
    s.add_argument("state")
    s.add_argument("urls", nargs="+")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("book-new")
    s.add_argument("--name", default="After")
    s.add_argument("state")
    s.add_argument("url")
    s.set_defaults(fn=cmd_book_new)
    s = sub.add_parser("delivered")
    s.add_argument("--timeout", type=int, default=120)
    s.add_argument("state")
    s.add_argument("url")
    s.set_defaults(fn=cmd_delivered)
    a = p.parse_args()
    if a.step == "in-flight" and a.command[:1] == ["--"]:
        a.command = a.command[1:]
    try:
        a.fn(a)
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
