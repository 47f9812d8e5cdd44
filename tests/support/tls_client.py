#!/usr/bin/python3
"""A TLS client for portico's tests, on Python's ssl module (OpenSSL).

Connects --count times to 127.0.0.1:PORT (resuming the previous session
from the second time on with --resume), sends --send, reads what comes back
until EOF (or --read bytes), and prints one JSON object per connection:

  {"ok": true, "version": "TLSv1.3", "cipher": "...", "alpn": "imap",
   "subject": "CN=alice", "serial": "1F", "resumed": false, "data": "..."}
  {"ok": false, "error": "..."}

Exit status 0 once every connection was tried, whatever their outcome.
"""
import argparse
import json
import socket
import ssl
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--sni")
    p.add_argument("--ca", help="verify the server against this CA (names not checked)")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--alpn", help="comma-separated protocols to offer")
    p.add_argument("--send", default="")
    p.add_argument("--read", type=int, default=0, help="read this many bytes, not until EOF")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-version", choices=["1.2", "1.3"])
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if args.ca:
        ctx.load_verify_locations(args.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    if args.max_version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    session = None
    for _ in range(args.count):
        result = {"ok": False}
        try:
            raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
            with ctx.wrap_socket(raw, server_hostname=args.sni, session=session if args.resume else None) as tls:
                result["version"] = tls.version()
                result["cipher"] = tls.cipher()[0]
                result["alpn"] = tls.selected_alpn_protocol() or ""
                cert = tls.getpeercert() or {}
                result["subject"] = ",".join(
                    f"{k}={v}" for rdn in cert.get("subject", ()) for (k, v) in rdn)
                result["serial"] = cert.get("serialNumber", "")
                if args.send:
                    tls.sendall(args.send.encode())
                data = b""
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline and (args.read == 0 or len(data) < args.read):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                result["data"] = data.decode(errors="replace")
                # TLS 1.3 tickets come after the handshake: read them before
                # keeping the session.
                result["resumed"] = tls.session_reused
                session = tls.session
                result["ok"] = True
        except Exception as e:  # the outcome is the test's to judge
            result["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
