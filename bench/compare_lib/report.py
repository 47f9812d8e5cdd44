"""The markdown tables and the README's Results section."""

import os
import platform

from .common import BENCH_DIR, FLOOR, PROXY_WORKLOADS, REFERENCE, bench_mode, rate_of
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


def tables(results, workloads, args):
    """Markdown tables, one per workload, plus skip and failure notes."""
    out = []
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
    }
    for w in workloads:
        rows = [r for r in results if r["workload"] == w]
        ok = {r["server"]: r["data"] for r in rows if r["status"] == "ok"}
        # Ratios divide by the C floor, for proxies by "direct", for exec by porticod.
        ref = REFERENCE[w]
        floor = ok.get(ref)
        ref_label = "floor" if ref == FLOOR else ref
        mode = bench_mode(w)
        out.append(f"### {titles[w]}\n")
        if w == "idle":
            out.append("| server | established | server closed | connect p99 | RSS before | RSS held | bytes/conn | vs floor |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        else:
            unit = "MB/s" if mode == "stream" else ("conn/s" if mode == "greeting" else "req/s")
            out.append(f"| server | {unit} | p50 | p99 | server CPU µs/op | bench CPU µs/op | RSS | rate vs {ref_label} "
                       f"| CPU vs {ref_label} | errors |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            d = r.get("data")
            if r["status"] != "ok":
                continue
            if w == "idle":
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
                out.append(f"| {r['server']} | {rate:,.0f} | {fmt_us(d['latency_us']['p50'])} | {fmt_us(d['latency_us']['p99'])} "
                           f"| {'–' if cpu is None else f'{cpu:.1f}'} | {d['client_cpu_us_per_op']:.1f} | {fmt_kib(d['server_rss_kb'])} "
                           f"| {fmt_ratio(rate, floor_rate)} | {fmt_ratio(cpu, floor_cpu)} | {fmt_errors(d['errors'])} |")
        notes = [f"- {r['server']}: {r['status']}: {r['reason']}" for r in rows if r["status"] != "ok"]
        notes += [f"- {r['server']}: {r['note']}" for r in rows if r["status"] == "ok" and r.get("note")]
        if w in PROXY_WORKLOADS and "direct" in ok:
            notes.append("- direct: no proxy, portico-bench talks to the echo upstream itself; its server CPU and RSS "
                         "are the upstream's")
        # On loopback the client's system calls also carry much of the
        # server's TCP work; say so when that may have capped a rate.
        for r in rows:
            d = r.get("data") or {}
            window = d.get("duration_s", 0) + (d.get("ramp_s", 0) if w == "idle" else 0)
            if r["status"] == "ok" and window > 0 and w in PROXY_WORKLOADS:
                # CPU 1 carries portico-bench and the echo upstream together.
                up = d["server_cpu_s"] / window if r["server"] == "direct" else r.get("upstream_cpu_share")
                if up is not None and d["client_cpu_s"] / window + up > CLIENT_BOUND:
                    notes.append(f"- {r['server']}: portico-bench and the echo upstream used "
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
        out.append("")
        if notes:
            out.extend(notes + [""])
    return "\n".join(out)


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
