"""Paths, names and small helpers shared by bench/compare's modules."""

import argparse
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT = BENCH_DIR.parent
PEERS = BENCH_DIR / "peers"
WORKLOADS = ("greeting", "echo", "idle", "stream")
# Table and chart order: portico first, then the floor, then the rest.
SERVERS = ("porticod", "c-epoll", "nginx", "go", "node", "uvloop", "asyncio")
FLOOR = "c-epoll"
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
