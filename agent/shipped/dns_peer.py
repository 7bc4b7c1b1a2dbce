"""A minimal DNS server for agent/shipped/check-names.sh: answers every A query for a name
under .eitwatch.test with 127.0.0.1 (other types: no records; other names: NXDOMAIN), over
UDP, and logs each question, so that the check can see that the agent's lookups came here.

    python dns_peer.py --port 53 --log FILE
"""
import argparse
import socket
import struct


def answer(query: bytes):
    ident, _flags, qdcount = struct.unpack(">HHH", query[:6])
    if qdcount != 1:
        return None, None
    i, labels = 12, []
    while query[i]:
        labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
        i += 1 + query[i]
    qtype, _qclass = struct.unpack(">HH", query[i + 1:i + 5])
    question = query[12:i + 5]
    name = ".".join(labels).lower()
    ours = name.endswith(".eitwatch.test")
    rcode = 0 if ours else 3
    records = b""
    if ours and qtype == 1:
        # Name as a pointer to the question (offset 12), A, IN, TTL 60, 4 bytes.
        records = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    header = struct.pack(">HHHHHH", ident, 0x8180 | rcode, 1, 1 if records else 0, 0, 0)
    return header + question + records, f"{name} type {qtype}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    with open(args.log, "a", buffering=1) as log:
        while True:
            data, peer = sock.recvfrom(512)
            try:
                reply, what = answer(data)
            except (IndexError, struct.error):
                continue
            if reply:
                sock.sendto(reply, peer)
                log.write(what + "\n")


if __name__ == "__main__":
    main()
