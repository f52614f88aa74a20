#!/usr/bin/env python3
"""lab/traffic.py — a small ICMP echo traffic generator for the dagw lab.

`ping` is not installed on the lab machines, so the lab brings its own: echo
requests at a fixed rate (default 200/s) over a raw ICMP / ICMPv6 socket
(needs root or CAP_NET_RAW) for a fixed time, then a summary of what came back:

    sent 2000 received 1987 lost 13 (0.65%) longest gap 70 ms (13 in a row) rtt avg 0.05 ms max 1.20 ms

The "longest gap" is the longest run of consecutive unanswered requests, as
time (run length x interval): the outage a failover caused. Replies are
matched by ICMP identifier and sequence number; late replies (after --wait)
count as lost. Standard library only.

Usage: traffic.py [--rate 200] [--duration 10] [--wait 1] [--json] ADDRESS
Exit status: 0 if at least one reply came back (or --allow-none), 1 otherwise,
2 on usage errors.
"""

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def build_request(v6: bool, ident: int, seq: int, payload: bytes) -> bytes:
    kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        # The kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets.
        return header + payload
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", kind, 0, csum, ident, seq) + payload


def parse_reply(v6: bool, packet: bytes, ident: int):
    """Returns the sequence number of an echo reply for us, else None."""
    if not v6:
        # Raw IPv4 sockets deliver the IP header too.
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, _code, _csum, rid, seq = struct.unpack("!BBHHH", packet[:8])
    if kind != (ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY) or rid != ident:
        return None
    return seq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("address", help="IPv4 or IPv6 address to send echo requests to")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    ap.add_argument("--wait", type=float, default=1.0, help="seconds to wait for late replies (default 1)")
    ap.add_argument("--size", type=int, default=56, help="payload bytes (default 56)")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ap.add_argument("--allow-none", action="store_true", help="exit 0 even if nothing came back")
    args = ap.parse_args()

    try:
        addr = ipaddress.ip_address(args.address)
    except ValueError as e:
        ap.error(str(e))
    if not (0 < args.rate <= 100000) or args.duration <= 0 or args.wait < 0 or not (8 <= args.size <= 1400):
        ap.error("out of range: need 0 < rate <= 100000, duration > 0, wait >= 0, 8 <= size <= 1400")

    v6 = addr.version == 6
    try:
        if v6:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        print("traffic.py: a raw ICMP socket needs root (or CAP_NET_RAW)", file=sys.stderr)
        return 2
    sock.setblocking(False)
    dest = (str(addr), 0)

    ident = os.getpid() & 0xFFFF
    interval = 1.0 / args.rate
    count = max(1, int(round(args.duration * args.rate)))
    if count > 65536:
        ap.error("rate x duration must not exceed 65536 requests (16-bit sequence numbers)")
    send_time = [0.0] * count
    rtt = [None] * count
    payload = bytes(range(256)) * (args.size // 256 + 1)
    payload = payload[: args.size]
    send_errors = 0

    def receive(until: float, stop_when_all_in: bool = False) -> None:
        while True:
            if stop_when_all_in and all(r is not None for r in rtt):
                return
            timeout = until - time.monotonic()
            if timeout <= 0:
                return
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return
            while True:
                try:
                    packet = sock.recv(65535)
                except BlockingIOError:
                    break
                now = time.monotonic()
                seq = parse_reply(v6, packet, ident)
                if seq is not None and seq < count and send_time[seq] and rtt[seq] is None:
                    rtt[seq] = now - send_time[seq]

    start = time.monotonic()
    for seq in range(count):
        due = start + seq * interval
        receive(due)
        send_time[seq] = time.monotonic()
        try:
            sock.sendto(build_request(v6, ident, seq, payload), dest)
        except OSError:
            # No route / unreachable neighbour: counts as lost, keep going.
            send_errors += 1
    receive(time.monotonic() + args.wait, stop_when_all_in=True)
    sock.close()

    received = sum(1 for r in rtt if r is not None)
    lost = count - received
    run = longest = 0
    for r in rtt:
        run = run + 1 if r is None else 0
        longest = max(longest, run)
    rtts = [r for r in rtt if r is not None]
    summary = {
        "address": str(addr),
        "sent": count,
        "received": received,
        "lost": lost,
        "loss_pct": round(100.0 * lost / count, 2),
        "longest_gap_ms": round(longest * interval * 1000.0, 1),
        "longest_run_lost": longest,
        "send_errors": send_errors,
        "rtt_avg_ms": round(1000.0 * sum(rtts) / len(rtts), 3) if rtts else None,
        "rtt_max_ms": round(1000.0 * max(rtts), 3) if rtts else None,
        "elapsed_s": round(time.monotonic() - start, 2),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        rtt_text = (
            f" rtt avg {summary['rtt_avg_ms']} ms max {summary['rtt_max_ms']} ms" if rtts else ""
        )
        print(
            f"{addr}: sent {count} received {received} lost {lost} ({summary['loss_pct']}%)"
            f" longest gap {summary['longest_gap_ms']:g} ms ({longest} in a row){rtt_text}"
        )
    return 0 if received or args.allow_none else 1


if __name__ == "__main__":
    sys.exit(main())
