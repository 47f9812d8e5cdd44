"""Paths, names and small helpers shared by bench/compare's modules."""

import argparse
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT = BENCH_DIR.parent
PEERS = BENCH_DIR / "peers"
WORKLOADS = ("greeting", "echo", "idle", "stream", "proxy-echo", "proxy-stream", "exec",
             "tls-handshake", "tls-handshake-rsa", "tls-resume", "tls-echo", "tls-idle",
             "proxy-balance-rr", "proxy-balance-lc")
DEFAULT_WORKLOADS = ("greeting", "echo", "idle")
# Table and chart order: portico first, then the floor, then the rest.
SERVERS = ("porticod", "c-epoll", "nginx", "go", "node", "uvloop", "asyncio")
FLOOR = "c-epoll"
# porticod's proxy and exec handlers have peers of their own: relays, and
# inetd-style spawners. "direct" is no server at all: the client talks
# straight to the proxies' echo upstream, the reference a proxy adds to.
PROXY_SERVERS = ("porticod", "haproxy", "socat", "direct")
EXEC_SERVERS = ("porticod", "xinetd", "tcpserver")
PROXY_WORKLOADS = ("proxy-echo", "proxy-stream")
# TLS on a listener: porticod does it in its one process; nginx answers the
# greeting itself and relays echo and idle to the C floor; haproxy, stunnel
# and hitch terminate TLS in front of the C floor for every workload.
TLS_SERVERS = ("porticod", "nginx", "haproxy", "stunnel", "hitch")
TLS_WORKLOADS = ("tls-handshake", "tls-handshake-rsa", "tls-resume", "tls-echo", "tls-idle")
# The certificate's key each TLS workload serves with: ECDSA P-256, or RSA-2048.
TLS_KEY = {w: "ec" for w in TLS_WORKLOADS}
TLS_KEY["tls-handshake-rsa"] = "rsa"
# The proxy handler spreading connections over four C floor upstreams.
BALANCE_SERVERS = ("porticod", "haproxy", "nginx")
BALANCE_WORKLOADS = ("proxy-balance-rr", "proxy-balance-lc")
BALANCE_UPSTREAMS = 4
# The policy each balance workload asks for, in porticod's, haproxy's and
# nginx's words (nginx's stream upstreams are round robin unless told).
BALANCE = {
    "proxy-balance-rr": {"porticod": "round_robin", "haproxy": "roundrobin", "nginx": ""},
    "proxy-balance-lc": {"porticod": "least_conn", "haproxy": "leastconn", "nginx": "least_conn;"},
}
# porticod with one feature on, measured beside plain porticod in the same
# run to show what the feature costs: an access log file (logfmt), and a
# metrics listener present (scraped once a second, as Prometheus would).
PORTICOD_VARIANTS = ("porticod-accesslog", "porticod-metrics")
# What each may cost: server CPU per operation at most this much above plain
# porticod's in the same round.
VARIANT_BUDGETS = {"porticod-accesslog": 0.10, "porticod-metrics": 0.02}


def is_porticod(name):
    return name == "porticod" or name in PORTICOD_VARIANTS


# Which servers each workload runs by default, in table order.
SERVER_SETS = {w: SERVERS for w in ("greeting", "echo", "idle", "stream")}
SERVER_SETS["greeting"] = ("porticod",) + PORTICOD_VARIANTS + SERVERS[1:]
SERVER_SETS.update({w: PROXY_SERVERS for w in PROXY_WORKLOADS}, exec=EXEC_SERVERS)
SERVER_SETS.update({w: TLS_SERVERS for w in TLS_WORKLOADS})
SERVER_SETS.update({w: BALANCE_SERVERS for w in BALANCE_WORKLOADS})
ALL_SERVERS = tuple(dict.fromkeys(SERVERS + PORTICOD_VARIANTS + PROXY_SERVERS + EXEC_SERVERS + TLS_SERVERS + BALANCE_SERVERS))
# The row each workload's ratio columns divide by: the C floor; for a proxy,
# the upstream reached without one; for exec, which has no floor, porticod.
# TLS has no floor either: nginx, like porticod one process doing it all.
# Balancing: haproxy, the balancer people run.
REFERENCE = {w: FLOOR for w in SERVER_SETS}
REFERENCE.update({w: "direct" for w in PROXY_WORKLOADS}, exec="porticod")
REFERENCE.update({w: "nginx" for w in TLS_WORKLOADS})
REFERENCE.update({w: "haproxy" for w in BALANCE_WORKLOADS})
# What portico-bench runs for each workload, and porticod's handler for it.
BENCH_MODE = {"proxy-echo": "echo", "proxy-stream": "stream", "exec": "greeting",
              "tls-handshake": "greeting", "tls-handshake-rsa": "greeting", "tls-resume": "greeting",
              "tls-echo": "echo", "tls-idle": "idle",
              "proxy-balance-rr": "echo", "proxy-balance-lc": "echo"}
HANDLER = {"greeting": "greeting", "proxy-echo": "proxy", "proxy-stream": "proxy", "exec": "exec",
           "tls-handshake": "greeting", "tls-handshake-rsa": "greeting", "tls-resume": "greeting",
           "proxy-balance-rr": "proxy", "proxy-balance-lc": "proxy"}


def bench_mode(workload):
    return BENCH_MODE.get(workload, workload)


def handler_for(workload):
    return HANDLER.get(workload, "echo")


def is_idle(workload):
    return bench_mode(workload) == "idle"


def rate_of(workload, data):
    """The rate a table shows: MB/s sent for stream modes, ops/s otherwise."""
    return data["mb_per_sec_sent"] if bench_mode(workload) == "stream" else data["ops_per_sec"]
EX_CONFIG = 78  # porticod's exit code for a config it rejects


def say(msg):
    print(msg, flush=True)


def parse_seconds(text):
    units = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                break
    if text == "0":
        return 0.0
    raise argparse.ArgumentTypeError(f"bad duration '{text}' (use 250ms, 5s, 2m)")
