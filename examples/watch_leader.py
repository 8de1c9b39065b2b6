#!/usr/bin/env python3
"""Follows LeaderService.WatchLeader from Python with grpcio alone.

Prints one line per event: revision, kind, holder, epoch, write-ready, message.
No generated code is needed: the request is empty and the few fields of
WatchLeaderResponse (proto/autonomy/ha/v1/leader.proto) are decoded below.

    python3 examples/watch_leader.py 127.0.0.1:8890

Debian/Ubuntu: apt-get install python3-grpcio. With TLS, set AUTONOMY_TLS_CA
(and AUTONOMY_TLS_CERT / AUTONOMY_TLS_KEY, or AUTONOMY_TOKEN), as for the CLI.
Ctrl-C stops it. This example does not reconnect; the TypeScript client's
followLeader does (docs/client.md).
"""
import os
import sys

import grpc

METHOD = "/autonomy.ha.v1.LeaderService/WatchLeader"
KINDS = {1: "snapshot", 2: "leader_changed", 3: "write_ready_changed", 4: "leader_lost",
         5: "split_brain_detected", 6: "split_brain_resolved"}


def fields(buf):
    """Yields (field number, value) of a protobuf message: ints for varints, bytes for length-delimited."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            size, i = varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, value


def varint(buf, i):
    result = shift = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def decode_event(raw):
    event = {"revision": 0, "kind": 0, "holder_id": "", "epoch": 0, "write_ready": False, "message": ""}
    for number, value in fields(raw):
        if number == 1:
            event["revision"] = value
        elif number == 2:
            event["kind"] = value
        elif number == 3:  # LeaderInfo
            for n, v in fields(value):
                if n == 1:
                    event["holder_id"] = v.decode()
                elif n == 2:
                    event["epoch"] = v
                elif n == 4:
                    event["write_ready"] = bool(v)
        elif number == 5:
            event["message"] = value.decode()
    return event


def channel(target):
    ca = os.environ.get("AUTONOMY_TLS_CA")
    if not ca:
        return grpc.insecure_channel(target), []
    read = lambda name: open(os.environ[name], "rb").read() if os.environ.get(name) else None
    creds = grpc.ssl_channel_credentials(read("AUTONOMY_TLS_CA"), read("AUTONOMY_TLS_KEY"), read("AUTONOMY_TLS_CERT"))
    token = os.environ.get("AUTONOMY_TOKEN")
    return grpc.secure_channel(target, creds), [("authorization", f"Bearer {token}")] if token else []


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: watch_leader.py HOST:PORT  (a coordinator or an agent)\n")
        return 2
    target = sys.argv[1].split("://", 1)[-1].rstrip("/")
    ch, metadata = channel(target)
    watch = ch.unary_stream(METHOD, request_serializer=lambda _: b"", response_deserializer=decode_event)
    try:
        for e in watch(None, metadata=metadata):
            holder = e["holder_id"] or "-"
            print(f"{e['revision']} {KINDS.get(e['kind'], e['kind'])} holder={holder} epoch={e['epoch']} "
                  f"write_ready={str(e['write_ready']).lower()} {e['message']}", flush=True)
    except KeyboardInterrupt:
        return 0
    except grpc.RpcError as err:
        sys.stderr.write(f"watch_leader: {target}: {err.code().name}: {err.details()}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
