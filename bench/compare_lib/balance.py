"""How a balancing proxy spread its requests over its upstreams.

Each upstream is the C floor (peers/epoll_server.c), which prints
"served: connections N, bytes N" when it gets SIGUSR1 or SIGTERM.
"""

import re

_SERVED = re.compile(r"^served: connections (\d+), bytes (\d+)$", re.M)


def parse_served(text):
    """(connections, bytes) from the floor's newest report in text, or None."""
    found = _SERVED.findall(text)
    if not found:
        return None
    connections, nbytes = found[-1]
    return int(connections), int(nbytes)


def spread(served, size):
    """What the table shows of upstreams' (connections, bytes) counts:
    requests (bytes / echo size) per upstream, each one's share of the
    total in %, and the busiest over the idlest (inf when one served none).
    None when nothing was served at all."""
    requests = [nbytes // size for _, nbytes in served]
    total = sum(requests)
    if total == 0:
        return None
    least, most = min(requests), max(requests)
    return {
        "requests": requests,
        "connections": [connections for connections, _ in served],
        "shares": [100.0 * r / total for r in requests],
        "max_min": most / least if least else float("inf"),
    }


def fmt_shares(s):
    return "/".join(f"{x:.1f}" for x in s["shares"])


def fmt_max_min(s):
    return "∞" if s["max_min"] == float("inf") else f"{s['max_min']:.2f}"
