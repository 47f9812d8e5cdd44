"""The markdown tables and the README's Results section."""

import os
import platform

from .balance import fmt_max_min, fmt_shares
from .common import (BALANCE_UPSTREAMS, BALANCE_WORKLOADS, BENCH_DIR, FLOOR, PROXY_WORKLOADS, REFERENCE, TLS_WORKLOADS,
                     VARIANT_BUDGETS, bench_mode, is_idle, rate_of)
from .processes import run_quiet

CLIENT_BOUND = 0.9  # share of its core above which portico-bench may be the limit


def fmt_us(us):
    if us is None:
        return "–"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def fmt_kib(kb):
    if kb is None:
        return "–"
    return f"{kb / 1024:.1f} MiB" if kb >= 10240 else f"{kb} KiB"


def fmt_ratio(x, floor):
    return f"{x / floor:.2f}×" if x is not None and floor else "–"


def fmt_errors(errors):
    return ", ".join(f"{k} {v}" for k, v in errors.items()) or "0"


def fmt_processes(r):
    """How a server of several processes adds up: "haproxy 412.0 + C floor
    12.1 µs/op, 9.1 MiB + 1300 KiB"; None for one process."""
    procs = (r.get("data") or {}).get("server_processes")
    labels = r.get("processes")
    if not procs or not labels or len(procs) != len(labels) or not r["data"].get("ops"):
        return None
    ops = r["data"]["ops"]
    cpu = " + ".join(f"{label} {p['cpu_s'] * 1e6 / ops:.1f}" for label, p in zip(labels, procs))
    rss = " + ".join(fmt_kib(p["rss_kb"]) for p in procs)
    return f"server CPU and RSS are the sum of {len(procs)} processes: {cpu} µs/op; {rss}"


def fmt_resumed(d):
    tls = d.get("tls") or {}
    return f"{100 * tls['resumed'] / tls['handshakes']:.1f}%" if tls.get("handshakes") else "–"


def tables(results, workloads, args):
    """Markdown tables, one per workload, plus skip and failure notes."""
    out = []
    trips = (f"connections of {args.balance_round_trips} round trips each" if args.balance_round_trips
             else "persistent connections")
    titles = {
        "greeting": f"greeting: connect, send a line, read `Hello from server!\\n` to EOF, close; {args.connections} concurrent",
        "echo": f"echo: {args.size} bytes out and back on {args.connections} persistent connections",
        "idle": f"idle: {args.idle_connections} connections held {args.duration} without traffic",
        "stream": f"stream: {args.stream_size}-byte chunks one way into an echo server on {args.connections} connections",
        "proxy-echo": f"proxy-echo: {args.size} bytes out and back through the proxy to a C echo upstream, "
                      f"{args.connections} persistent connections",
        "proxy-stream": f"proxy-stream: {args.stream_size}-byte chunks one way through the proxy into a C echo upstream, "
                        f"which sends them back, on {args.connections} connections",
        "exec": f"exec: greeting answered by `peers/hello.c`, a program spawned per connection; {args.connections} concurrent",
        "tls-handshake": "tls-handshake: a full TLS 1.3 handshake per connection, ECDSA P-256 certificate: connect, "
                         f"handshake, send a line, read `Hello from server!\\n` to EOF, close; {args.connections} concurrent",
        "tls-handshake-rsa": "tls-handshake-rsa: the same with an RSA-2048 certificate; "
                             f"{args.connections} concurrent",
        "tls-resume": "tls-resume: the same (ECDSA P-256), each slot resuming with the newest session ticket it was "
                      f"given; {args.connections} concurrent",
        "tls-echo": f"tls-echo: {args.size} bytes out and back over TLS 1.3 (ECDSA P-256) on {args.connections} "
                    "persistent connections",
        "tls-idle": f"tls-idle: {args.tls_idle_connections} TLS 1.3 connections (ECDSA P-256), handshake done, "
                    f"held {args.duration} without traffic",
        "proxy-balance-rr": f"proxy-balance-rr: {args.size} bytes out and back through the proxy, round robin over "
                            f"{BALANCE_UPSTREAMS} C echo upstreams; {args.connections} {trips}",
        "proxy-balance-lc": f"proxy-balance-lc: the same, to the upstream with the fewest connections; "
                            f"{args.connections} {trips}",
    }
    for w in workloads:
        rows = [r for r in results if r["workload"] == w]
        ok = {r["server"]: r["data"] for r in rows if r["status"] == "ok"}
        # Ratios divide by the C floor, for proxies by "direct", for exec by porticod.
        ref = REFERENCE[w]
        floor = ok.get(ref)
        ref_label = "floor" if ref == FLOOR else ref
        mode = bench_mode(w)
        # TLS handshakes say how many were resumed; balancing, how requests
        # were spread over the upstreams.
        resumed = w in TLS_WORKLOADS and mode == "greeting"
        spread = w in BALANCE_WORKLOADS
        out.append(f"### {titles[w]}\n")
        if is_idle(w):
            out.append("| server | established | server closed | connect p99 | RSS before | RSS held | bytes/conn "
                       f"| vs {ref_label} |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        else:
            unit = "MB/s" if mode == "stream" else ("conn/s" if mode == "greeting" else "req/s")
            extra = " resumed |" if resumed else ""
            tail_cols = " upstream shares % | max/min |" if spread else ""
            out.append(f"| server | {unit} |{extra} p50 | p99 | server CPU µs/op | bench CPU µs/op | RSS | rate vs {ref_label} "
                       f"| CPU vs {ref_label} | errors |{tail_cols}")
            out.append("|---|---:|" + ("---:|" if resumed else "") + "---:|---:|---:|---:|---:|---:|---:|---:|"
                       + ("---:|---:|" if spread else ""))
        for r in rows:
            d = r.get("data")
            if r["status"] != "ok":
                continue
            if is_idle(w):
                bpc = d.get("server_bytes_per_conn")
                floor_bpc = floor.get("server_bytes_per_conn") if floor else None
                # The floor keeps nothing per connection in user space, so its
                # figure is near zero and a ratio to it would mean nothing.
                ratio = fmt_ratio(bpc, floor_bpc) if bpc is not None and floor_bpc and floor_bpc >= 64 else "–"
                out.append(f"| {r['server']} | {d['established']} | {d['server_closed']} | {fmt_us(d['latency_us']['p99'])} "
                           f"| {fmt_kib(d['server_rss_kb_before'])} | {fmt_kib(d['server_rss_kb'])} "
                           f"| {'–' if bpc is None else f'{bpc:,.0f}'} | {ratio} |")
            else:
                rate = rate_of(w, d)
                floor_rate = rate_of(w, floor) if floor else None
                cpu = d.get("server_cpu_us_per_op")
                floor_cpu = floor.get("server_cpu_us_per_op") if floor else None
                extra = f" {fmt_resumed(d)} |" if resumed else ""
                sp = r.get("spread")
                tail_cols = (f" {fmt_shares(sp)} | {fmt_max_min(sp)} |" if sp else " – | – |") if spread else ""
                out.append(f"| {r['server']} | {rate:,.0f} |{extra} {fmt_us(d['latency_us']['p50'])} | {fmt_us(d['latency_us']['p99'])} "
                           f"| {'–' if cpu is None else f'{cpu:.1f}'} | {d['client_cpu_us_per_op']:.1f} | {fmt_kib(d['server_rss_kb'])} "
                           f"| {fmt_ratio(rate, floor_rate)} | {fmt_ratio(cpu, floor_cpu)} | {fmt_errors(d['errors'])} |{tail_cols}")
        notes = [f"- {r['server']}: {r['status']}: {r['reason']}" for r in rows if r["status"] != "ok"]
        notes += [f"- {r['server']}: {r['note']}" for r in rows if r["status"] == "ok" and r.get("note")]
        notes += [f"- {r['server']}: {fmt_processes(r)}" for r in rows if r["status"] == "ok" and fmt_processes(r)]
        if w in TLS_WORKLOADS:
            # What was negotiated, as portico-bench read it off a handshake.
            seen = {}
            for r in rows:
                t = (r.get("data") or {}).get("tls") if r["status"] == "ok" else None
                if t and t.get("version"):
                    seen.setdefault(f"{t['version']} {t['cipher']} {t['group']}, server key {t['server_key']}",
                                    []).append(r["server"])
            for what, servers in seen.items():
                who = "every server" if len(seen) == 1 else ", ".join(servers)
                notes.append(f"- negotiated ({who}): {what}")
        if spread:
            counts = [f"{r['server']} {'/'.join(f'{c:,}' for c in r['spread']['connections'])}"
                      for r in rows if r["status"] == "ok" and r.get("spread")]
            if counts:
                notes.append("- connections per upstream (over the warm-up and the window; the shares count "
                             f"{args.size}-byte requests the same way): " + "; ".join(counts))
        if w in PROXY_WORKLOADS and "direct" in ok:
            notes.append("- direct: no proxy, portico-bench talks to the echo upstream itself; its server CPU and RSS "
                         "are the upstream's")
        # On loopback the client's system calls also carry much of the
        # server's TCP work; say so when that may have capped a rate.
        for r in rows:
            d = r.get("data") or {}
            window = d.get("duration_s", 0) + (d.get("ramp_s", 0) if is_idle(w) else 0)
            if r["status"] == "ok" and window > 0 and (w in PROXY_WORKLOADS or w in BALANCE_WORKLOADS):
                # CPU 1 carries portico-bench and the echo upstreams together.
                up = d["server_cpu_s"] / window if r["server"] == "direct" else r.get("upstream_cpu_share")
                if up is not None and d["client_cpu_s"] / window + up > CLIENT_BOUND:
                    notes.append(f"- {r['server']}: portico-bench and the echo upstreams used "
                                 f"{100 * (d['client_cpu_s'] / window + up):.0f}% of CPU 1 "
                                 "together: this rate may be their limit, not the proxy's")
            elif r["status"] == "ok" and window > 0 and d["client_cpu_s"] / window > CLIENT_BOUND:
                notes.append(f"- {r['server']}: portico-bench used {100 * d['client_cpu_s'] / window:.0f}% of its core: "
                             "this rate may be the client's limit, not the server's")
        spread = [f"{r['server']} " + ", ".join(f"{x:,.0f}" for x in r["rounds"])
                  for r in rows if r["status"] == "ok" and len(r.get("rounds", [])) > 1]
        if spread:
            unit = "MB/s" if w in ("stream", "proxy-stream") else "ops/s"
            notes.append(f"- every round ({unit}): " + "; ".join(spread))
        notes += variant_costs(rows)
        out.append("")
        if notes:
            out.extend(notes + [""])
    return "\n".join(out)


def variant_costs(rows):
    """A feature's cost as a ratio per round: each round measures plain
    porticod and the variant one after the other, so that a slow minute of a
    shared machine hits both; the median of those ratios moves much less
    than the ratio of two medians."""
    plain = next((r for r in rows if r["server"] == "porticod" and r["status"] == "ok"), None)
    if not plain or not plain.get("round_cpu"):
        return []
    notes = []
    for r in rows:
        if r["server"] not in VARIANT_BUDGETS or r["status"] != "ok" or not r.get("round_cpu"):
            continue
        ratios = [v / p for v, p in zip(r["round_cpu"], plain["round_cpu"]) if v and p]
        if not ratios:
            continue
        middle = sorted(ratios)[(len(ratios) - 1) // 2]
        budget = VARIANT_BUDGETS[r["server"]]
        verdict = "within" if middle <= 1 + budget else "over"
        notes.append(f"- {r['server']}: server CPU per op against porticod's, round by round: "
                     + ", ".join(f"{x:.2f}×" for x in ratios)
                     + f"; median {middle:.2f}×, {verdict} its budget of {1 + budget:.2f}×")
    return notes


def versions(peers, names):
    probes = {
        "porticod": [str(peers.porticod), "--version"],
        "c-epoll": ["gcc", "-dumpfullversion"],
        "nginx": ["nginx", "-v"],
        "go": ["go", "version"],
        "node": ["node", "--version"],
        "uvloop": ["/usr/bin/python3", "-c", "import uvloop, sys; print('uvloop', uvloop.__version__, 'python', sys.version.split()[0])"],
        "asyncio": ["/usr/bin/python3", "--version"],
        "haproxy": ["haproxy", "-v"],
        "socat": ["sh", "-c", "socat -V | grep -m1 'socat version'"],
        "direct": ["sh", "-c", "echo c-epoll echo upstream, gcc $(gcc -dumpfullversion)"],
        "xinetd": ["xinetd", "-version"],
        "tcpserver": ["dpkg-query", "-W", "-f", "ucspi-tcp ${Version}", "ucspi-tcp"],
        "stunnel": ["sh", "-c", "stunnel4 -version 2>&1 | grep -m1 '^stunnel'"],
        "hitch": ["hitch", "--version"],
    }
    found = []
    for n in names:
        if n == "porticod" and not os.access(peers.porticod, os.X_OK):
            continue
        rc, out = run_quiet(probes[n], 10)
        if rc == 0 and out:
            found.append(f"{n}: {out.splitlines()[0].strip()}")
    return "; ".join(found)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def update_readme(markdown, png=None):
    """Puts the tables (and the chart, when there is one) between the results
    markers of bench/README.md and of the top-level README.md."""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    updated = False
    for readme in (BENCH_DIR / "README.md", BENCH_DIR.parent / "README.md"):
        if not readme.exists():
            continue
        text = readme.read_text()
        if begin not in text or end not in text:
            continue
        body = markdown
        if png is not None and png.exists():
            rel = os.path.relpath(png, readme.parent)
            body = f"![porticod and its peers, {png.stem}]({rel})\n\n{markdown}"
        head, rest = text.split(begin, 1)
        _, foot = rest.split(end, 1)
        readme.write_text(f"{head}{begin}\n{body}\n{end}{foot}")
        updated = True
    return updated
