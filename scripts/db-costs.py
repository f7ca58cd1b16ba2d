"""What SecantusDB charges per command and per index, measured with pymongo.

Starts a private in-memory SecantusDB, then prints:
  1. insert throughput (batches of 32) by the indexes on the collection;
  2. the server time of each command a booking costs in the flow phase, run
     one at a time against collections shaped like the services' (3000
     bookings already stored), in the order the pipeline issues them;
  3. what a `$pull` of delivered outbox events costs by documents per command;
  4. what a single insert costs as retryable writes accumulate, with the
     driver's retryable writes on and off;
  5. what an update of one booking by `_id` costs by the number of bookings
     stored, as `findAndModify` (the approval) and as `update`.
Not a test; figures move with the machine's load.

Run with the test-servers virtualenv (scripts/test-servers.sh install):
  ~/.cache/booking-test-servers/venv/bin/python scripts/db-costs.py
"""

import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

from pymongo import MongoClient

VENV_BIN = os.path.dirname(sys.executable)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server():
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(VENV_BIN, "secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", ":memory:"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    for _ in range(100):
        try:
            client.admin.command("ping")
            return proc, client, port
        except Exception:
            time.sleep(0.1)
    raise SystemExit("SecantusDB did not start")


def event():
    return {"event_id": str(uuid.uuid4()), "topic": "t", "key": "k", "payload": "p" * 600,
            "headers": [["ce_type", "x"]] * 6, "created_at": "2026-11-25T00:00:00.000Z"}


def booking(i, traveler="t", owner="o"):
    return {"_id": str(uuid.uuid4()), "property_id": "p%d" % (i % 64), "property_name": "Nice",
            "owner_id": owner, "traveler_id": traveler, "check_in": "2027-01-01",
            "check_out": "2027-01-03", "nights": 2, "guests": 2, "total_price_cents": 2000,
            "currency": "EUR", "status": "PENDING", "status_reason": None, "version": 0,
            "cancellation_requested_at": None, "created_at": "2026-11-25T04:%02d" % (i % 60),
            "updated_at": "x"}


def index_costs(db):
    print("## insert throughput, batches of 32, by indexes besides _id")
    specs = {
        "none": [],
        "traveler_id+status+created_at": [([("traveler_id", 1), ("status", 1), ("created_at", -1)], {})],
        "idempotency_key unique sparse (dropped in 3ea1f05)": [([("idempotency_key", 1)], {"unique": True, "sparse": True})],
        "outbox.event_id sparse": [([("outbox.event_id", 1)], {"sparse": True})],
    }
    for name, indexes in specs.items():
        coll = db["idx_" + str(len(indexes)) + name[:3]]
        for keys, opts in indexes:
            coll.create_index(keys, **opts)
        start = time.time()
        for _ in range(100):
            docs = [dict(booking(i), idempotency_key=str(uuid.uuid4()), outbox=[event()]) for i in range(32)]
            coll.insert_many(docs, ordered=False)
        print(f"{name:52s} {3200 / (time.time() - start):8.0f} docs/s")


def flow_costs(client):
    trav, own = client.trav, client.own
    tb, ob, tn, on, props = trav.bookings, own.bookings, trav.notifications, own.notifications, own.properties
    tb.create_index([("traveler_id", 1), ("status", 1), ("created_at", -1)])
    tb.create_index([("outbox.event_id", 1)], sparse=True)
    ob.create_index([("owner_id", 1), ("status", 1), ("created_at", -1)])
    ob.create_index("claimed_nights", unique=True, sparse=True)
    ob.create_index([("outbox.event_id", 1)], sparse=True)
    for n in (tn, on):
        n.create_index([("recipient_id", 1), ("created_at", -1)])
    props.insert_many([{"_id": "p%d" % i, "owner_id": "o", "name": "x" * 30, "version": 1} for i in range(64)])
    existing = [booking(i, "t%d" % (i % 32)) for i in range(3000)]
    tb.insert_many([dict(d) for d in existing])
    ob.insert_many([dict(d) for d in existing])

    times = {}

    def timed(name, call):
        start = time.perf_counter()
        call()
        times.setdefault(name, []).append((time.perf_counter() - start) * 1000)

    pending = {"outbox.event_id": {"$exists": True}}

    def relay(side, bookings, ev):
        # A relay's round per event: read the outbox, pull what went out.
        timed("%s relay: read outbox" % side, lambda: list(bookings.find(pending, {"outbox": 1}).limit(500)))
        timed("%s relay: $pull" % side, lambda: bookings.update_many(
            {"outbox.event_id": {"$in": [ev["event_id"]]}},
            {"$pull": {"outbox": {"event_id": {"$in": [ev["event_id"]]}}}}))

    def notify(side, notifications, recipient, b):
        timed("%s consumer: notification" % side, lambda: notifications.insert_many(
            [{"_id": str(uuid.uuid4()), "recipient_id": recipient, "booking_id": b["_id"],
              "message": "m" * 40, "created_at": "x"}], ordered=False))

    for i in range(300):
        b = booking(10000 + i, "flow-traveler", "flow-owner")
        requested, decided = event(), event()
        timed("traveler: insert booking", lambda: tb.insert_many([dict(b, outbox=[requested])], ordered=False))
        relay("traveler", tb, requested)
        timed("owner consumer: properties", lambda: list(props.find({"_id": {"$in": [b["property_id"]]}})))
        notify("owner", on, "flow-owner", b)
        timed("owner consumer: insert booking", lambda: ob.insert_many([dict(b)], ordered=False))
        timed("owner poller: PENDING list", lambda: list(
            ob.find({"owner_id": "flow-owner", "status": "PENDING"}).sort([("created_at", -1), ("_id", -1)])))
        timed("approve: read booking", lambda: ob.find_one({"_id": b["_id"]}))
        accepted = {k: v for k, v in b.items() if k != "_id"}
        accepted.update(status="ACCEPTED", version=1,
                        claimed_nights=["%s/2027-%d-a" % (b["property_id"], i), "%s/2027-%d-b" % (b["property_id"], i)])
        timed("approve: update", lambda: ob.update_one(
            {"_id": b["_id"], "version": 0}, {"$set": accepted, "$push": {"outbox": decided}}))
        relay("owner", ob, decided)
        timed("traveler consumer: bookings", lambda: list(tb.find({"_id": {"$in": [b["_id"]]}})))
        notify("traveler", tn, "flow-traveler", b)
        timed("traveler consumer: status", lambda: trav.command(
            {"update": "bookings", "ordered": True, "updates": [
                {"q": {"_id": b["_id"], "version": {"$lt": 1}},
                 "u": {"$set": {"status": "ACCEPTED", "version": 1, "updated_at": "y"}}}]}))
        timed("traveler poller: PENDING list", lambda: list(
            tb.find({"traveler_id": "flow-traveler", "status": "PENDING"}).sort([("created_at", -1), ("_id", -1)])))

    print("\n## one booking through the flow phase, one command at a time (ms, 300 bookings)")
    total = 0.0
    for name, samples in times.items():
        mean = statistics.mean(samples)
        total += mean
        print(f"{name:36s} mean {mean:5.2f}  p50 {statistics.median(samples):5.2f}")
    print(f"{'total':36s} mean {total:5.2f}")


def pull_costs(db):
    print("\n## $pull of delivered events, by documents per command (6000 stored)")
    coll = db.pull
    coll.create_index([("traveler_id", 1), ("status", 1), ("created_at", -1)])
    coll.create_index([("outbox.event_id", 1)], sparse=True)
    docs = [dict(booking(i, "t%d" % (i % 32)), outbox=[event()]) for i in range(6000)]
    coll.insert_many(docs)
    pos = 0
    for n in (1, 10, 32, 60, 200):
        samples = []
        for _ in range(3):
            ids = [d["outbox"][0]["event_id"] for d in docs[pos:pos + n]]
            pos += n
            start = time.perf_counter()
            coll.update_many({"outbox.event_id": {"$in": ids}},
                             {"$pull": {"outbox": {"event_id": {"$in": ids}}}})
            samples.append((time.perf_counter() - start) * 1000)
        ms = statistics.median(samples)
        print(f"{n:4d} documents: {ms:7.2f} ms per command, {ms / n:5.2f} ms per document")


def retryable_costs(port):
    print("\n## one insert_one, as retryable writes accumulate (ms, mean of each 2000)")
    for retry in (True, False):
        client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                             retryWrites=retry)
        coll = client.costs["retry_%s" % retry]
        means = []
        start = time.perf_counter()
        for i in range(1, 12001):
            coll.insert_one({"i": i})
            if i % 2000 == 0:
                now = time.perf_counter()
                means.append("%.2f" % ((now - start) / 2 * 1000 / 1000))
                start = now
        print(f"retryWrites={str(retry).lower():5s} writes 1-2000 ... 10001-12000: {' '.join(means)}")


def size_costs(client):
    print("\n## one booking updated by _id, by bookings stored (ms, p50 of 60)")
    for n in (0, 1000, 5000):
        coll = client["size%d" % n].bookings
        coll.create_index([("owner_id", 1), ("status", 1), ("created_at", -1), ("_id", -1)])
        coll.create_index("claimed_nights", unique=True, sparse=True)
        coll.create_index([("outbox.event_id", 1)], sparse=True)
        stored = [booking(i, "t%d" % (i % 32)) for i in range(n)]
        for i in range(0, n, 500):
            coll.insert_many(stored[i:i + 500])
        times = {"find": [], "findAndModify": [], "update": []}
        for i in range(60):
            for name in times:
                b = booking(100000 + i, "ft", "fo")
                coll.insert_one(dict(b))
                change = {"$set": {"status": "ACCEPTED", "version": 1,
                                   "claimed_nights": ["%s|%s|%d" % (name, b["_id"], i)]},
                          "$push": {"outbox": event()}}
                start = time.perf_counter()
                if name == "find":
                    coll.find_one({"_id": b["_id"]})
                elif name == "findAndModify":
                    coll.find_one_and_update({"_id": b["_id"], "version": 0}, change,
                                             projection={"outbox.event_id": 1})
                else:
                    coll.update_one({"_id": b["_id"], "version": 0}, change)
                times[name].append((time.perf_counter() - start) * 1000)
        print(f"{n:5d} stored: " + "; ".join(
            f"{name} {statistics.median(t):.2f}" for name, t in times.items()))


def main():
    proc, client, port = start_server()
    try:
        index_costs(client.costs)
        flow_costs(client)
        pull_costs(client.costs)
        retryable_costs(port)
        size_costs(client)
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
