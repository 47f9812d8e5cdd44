"""The TLS workloads' certificates, and a check that a server speaks TLS 1.3
with them before it is measured."""

import socket
import ssl
import time
from pathlib import Path

from .processes import run_quiet

# `openssl req -x509`: a self-signed leaf, so every handshake carries one
# certificate. Each certificate a server sends costs the client's OpenSSL 3.0
# about 0.2 ms to decode, more than the server's whole signature, and the
# client is already the scarcer core; a chain would only add to its share.
KEYS = {
    "ec": (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"], "ECDSA P-256"),
    "rsa": (["-newkey", "rsa:2048"], "RSA-2048"),
}
GREETING = b"Hello from server!\n"


def make_certificate(directory, key):
    """Writes cert.pem, key.pem and cert+key.pem (for haproxy and hitch, which
    take both in one file) for key "ec" or "rsa" under directory. Returns
    ({"cert", "key", "pem"}: paths, None) or (None, reason)."""
    d = Path(directory) / f"tls-{key}"
    d.mkdir(exist_ok=True)
    cert, keyfile, pem = d / "cert.pem", d / "key.pem", d / "cert+key.pem"
    if not pem.exists():
        rc, out = run_quiet(["openssl", "req", "-x509", *KEYS[key][0], "-nodes", "-keyout", str(keyfile),
                             "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], 120)
        if rc != 0:
            return None, f"openssl req -x509 failed: {out[-300:]}"
        pem.write_text(cert.read_text() + keyfile.read_text())
    return {"cert": cert, "key": keyfile, "pem": pem}, None


def tls_check(port, ca, handler, seconds=10.0):
    """One connection as the workload makes them, with the chain verified
    against ca (the self-signed certificate) for the name localhost, TLS 1.3
    required; the greeting's reply or an echo checked. Retries until seconds
    have passed (a master may still be starting its workers). None when all
    is well, else why not."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(str(ca))
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _one_check(ctx, port, handler)
        except (OSError, ssl.SSLError) as e:
            if time.monotonic() > deadline:
                return f"TLS check failed: {e}"
            time.sleep(0.1)


def _one_check(ctx, port, handler):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            if tls.version() != "TLSv1.3":
                return f"negotiated {tls.version()}, not TLSv1.3"
            if handler == "greeting":
                tls.sendall(b"GET request\n")
                got = b""
                try:
                    while len(got) <= len(GREETING):
                        part = tls.recv(4096)
                        if not part:
                            break
                        got += part
                except ConnectionResetError:
                    pass  # a server that never reads the request resets after its reply
                want = GREETING
            else:
                want = b"ping\n"
                tls.sendall(want)
                got = b""
                while len(got) < len(want):
                    part = tls.recv(4096)
                    if not part:
                        break
                    got += part
            return None if got == want else f"TLS check: got {got!r}, expected {want!r}"
