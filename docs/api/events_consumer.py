"""Example backend consumer of the gateway's event stream (--events-stream on),
with redis-py: every chat message, join, leave, connect and disconnect of the
whole cluster, read with a consumer group and acknowledged once handled, so
that nothing is lost while the backend restarts.

    python3 events_consumer.py redis://127.0.0.1:6379 [--prefix chat:]

prints each event as a JSON line. A real backend replaces `handle` with its
own write (made idempotent on the entry id: after a crash between the write
and the XACK the entry comes again)."""

import argparse
import json

import redis

GROUP = "backend"


def ensure_group(r, stream, group=GROUP):
    """The consumer group, made once; it starts at the stream's beginning."""
    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def consume(r, stream, handle, consumer="consumer-1", group=GROUP, block_ms=5000,
            stop=lambda: False):
    """Calls handle(entry_id, fields) for each event, then acknowledges it.

    First what this consumer was given before a restart and did not
    acknowledge (its pending entries, from id 0), then new entries ('>')."""
    ensure_group(r, stream, group)
    backlog = True
    while not stop():
        reply = r.xreadgroup(group, consumer, {stream: "0" if backlog else ">"}, count=100,
                             block=None if backlog else block_ms)
        entries = reply[0][1] if reply else []
        if backlog and not entries:
            backlog = False
            continue
        for entry_id, fields in entries:
            if fields:   # None: trimmed (--events-maxlen) before it was handled
                handle(entry_id, fields)
            r.xack(stream, group, entry_id)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="redis://HOST:PORT of the gateways' Redis")
    parser.add_argument("--prefix", default="chat:", help="the gateways' --redis-prefix")
    parser.add_argument("--consumer", default="consumer-1")
    args = parser.parse_args()
    r = redis.Redis.from_url(args.url, decode_responses=True)

    def handle(entry_id, fields):
        event = dict(fields, entry=entry_id)
        if event["type"] == "chat":
            event["data"] = json.loads(event["data"])   # the chat frame as clients get it
        print(json.dumps(event, ensure_ascii=False), flush=True)

    consume(r, args.prefix + "events", handle, args.consumer)


if __name__ == "__main__":
    main()
