"""Building, starting and measuring each server."""

import json
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from .balance import parse_served, spread
from .common import (BALANCE, BALANCE_UPSTREAMS, BALANCE_WORKLOADS, BENCH_DIR, EX_CONFIG, PEERS, PROXY_WORKLOADS,
                     ROOT, TLS_KEY, TLS_WORKLOADS, bench_mode, handler_for, is_idle, is_porticod, parse_seconds,
                     say)
from .packages import nginx_stream_module
from .processes import descendants, die_with_parent, free_port, run_quiet, spawn, stop, tail, wait_listening
from .tls import make_certificate, tls_check


class Peers:
    """Knows how to build and start every server; build steps run once."""

    def __init__(self, tmp, porticod, log):
        self.tmp, self.porticod, self.log = Path(tmp), Path(porticod), log
        self.built = {}
        self.certs = {}  # "ec"/"rsa" -> {"cert", "key", "pem"}

    def build(self, name):
        """None when ready to start, else the reason it can't be."""
        if name in self.built:
            return self.built[name]
        reason = None
        if is_porticod(name) and not os.access(self.porticod, os.X_OK):
            reason = f"{self.porticod} not found (build porticod first, or pass --porticod)"
        elif name == "c-epoll":
            rc, out = run_quiet(["gcc", "-O2", "-o", str(self.tmp / "epoll_server"), str(PEERS / "epoll_server.c")], 120)
            reason = None if rc == 0 else f"gcc failed: {out[-300:]}"
        elif name == "hello":
            # Static: the program's own start-up (no dynamic loader) is then
            # as small as it gets, leaving more of each op to the spawner.
            rc, out = run_quiet(["gcc", "-O2", "-static", "-o", str(self.hello), str(PEERS / "hello.c")], 120)
            reason = None if rc == 0 else f"gcc failed building peers/hello.c: {out[-300:]}"
        elif name == "go":
            env = dict(os.environ, GOCACHE=str(self.tmp / "gocache"), GOPATH=str(self.tmp / "gopath"),
                       GOPROXY="off", GOFLAGS="", GO111MODULE="off", GOTOOLCHAIN="local")
            rc, out = run_quiet(["go", "build", "-o", str(self.tmp / "go_server"), str(PEERS / "go_server.go")], 300, env)
            reason = None if rc == 0 else f"go build failed: {out[-300:]}"
        self.built[name] = reason
        return reason

    @property
    def hello(self):
        return self.tmp / "hello"

    def prepare(self, workload):
        """What a workload needs besides its servers: the proxies' echo
        upstreams and the C floor behind TLS front-ends (the floor's binary),
        the certificate TLS is served with, or the program exec servers
        spawn. None when ready, else the reason it can't run."""
        if workload in PROXY_WORKLOADS or workload in BALANCE_WORKLOADS or workload in TLS_WORKLOADS:
            reason = self.build("c-epoll")
            if reason:
                return f"the C floor (peers/epoll_server.c) did not build: {reason}"
        if workload in TLS_WORKLOADS:
            key = TLS_KEY[workload]
            if key not in self.certs:
                self.certs[key], reason = make_certificate(self.tmp, key)
                if reason:
                    del self.certs[key]
                    return reason
        if workload == "exec":
            return self.build("hello")
        return None

    def command(self, name, port, workload, upstreams=(), backend=None):
        """(argv, env) to start a server, or a reason string if it can't run
        the workload. upstreams: the echo servers' ports, for proxies;
        backend: the C floor's port behind a TLS front-end."""
        handler = handler_for(workload)
        upstream = upstreams[0] if upstreams else None
        tls = self.certs[TLS_KEY[workload]] if workload in TLS_WORKLOADS else None
        balance = BALANCE.get(workload)
        if is_porticod(name):
            cfg = self.tmp / f"portico-{workload}-{port}.toml"
            # As root porticod refuses to serve unless told it may (exit 78).
            daemon = "allow_root = true\n" if os.geteuid() == 0 else ""
            extra = ""
            if name == "porticod-accesslog":
                daemon += f'access_log = "{self.tmp / f"access-{port}.log"}"\n'
            elif name == "porticod-metrics":
                self.metrics_port = free_port()
                extra = (f'\n[[listener]]\nname = "metrics"\naddress = "127.0.0.1:{self.metrics_port}"\n'
                         'handler = "metrics"\n')
            options = ""
            if handler == "proxy":
                options = "upstream = [" + ", ".join(f'"127.0.0.1:{u}"' for u in upstreams) + "]\n"
            elif handler == "exec":
                options = f'command = ["{self.hello}"]\n'
            if balance:
                options += f'balance = "{balance["porticod"]}"\n'
            if tls:
                options += (f'tls_certificate = "{tls["cert"]}"\ntls_key = "{tls["key"]}"\n'
                            'tls_min_version = "1.3"\n')
            # Defaults throughout, the log level included: what an installed
            # porticod does.
            cfg.write_text(f'[daemon]\n{daemon}\n[[listener]]\naddress = "127.0.0.1:{port}"\n'
                           f'handler = "{handler}"\n{options}{extra}')
            return [str(self.porticod), "-c", str(cfg)], None
        if name == "haproxy":
            cfg = self.tmp / f"haproxy-{port}.cfg"
            if tls:
                conf = fill("haproxy-tls.cfg.in", PORT=port, PEM=tls["pem"], BACKEND=backend)
            elif balance:
                servers = "\n".join(f"\tserver up{i + 1} 127.0.0.1:{u}" for i, u in enumerate(upstreams))
                conf = fill("haproxy-balance.cfg.in", PORT=port, BALANCE=balance["haproxy"], SERVERS=servers)
            else:
                conf = fill("haproxy.cfg.in", PORT=port, UPSTREAM=upstream)
            cfg.write_text(conf)
            return ["haproxy", "-db", "-f", str(cfg)], None
        if name == "stunnel":
            cfg = self.tmp / f"stunnel-{port}.conf"
            cfg.write_text(fill("stunnel.conf.in", PORT=port, CERT=tls["cert"], KEY=tls["key"], BACKEND=backend))
            return ["stunnel4", str(cfg)], None
        if name == "hitch":
            cfg = self.tmp / f"hitch-{port}.conf"
            ocsp = self.tmp / f"hitch-{port}-ocsp"
            ocsp.mkdir(exist_ok=True)
            user = 'user = "nobody"' if os.geteuid() == 0 else ""
            cfg.write_text(fill("hitch.conf.in", PORT=port, PEM=tls["pem"], BACKEND=backend, DIR=ocsp, USER=user))
            return ["hitch", "--config", str(cfg)], None
        if name == "socat":
            return ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
                    f"TCP:127.0.0.1:{upstream}"], None
        if name == "xinetd":
            cfg = self.tmp / f"xinetd-{port}.conf"
            log = self.tmp / f"xinetd-{port}.log"
            cfg.write_text(fill("xinetd.conf.in", PORT=port, SERVER=self.hello, LOG=log,
                                USER=pwd.getpwuid(os.geteuid()).pw_name))
            return ["xinetd", "-dontfork", "-stayalive", "-filelog", str(log), "-f", str(cfg)], None
        if name == "tcpserver":
            # -H -R -l 0: no reverse DNS, ident (RFC 1413) or local name
            # look-ups per connection, which porticod and xinetd don't do
            # either (and DNS, unreachable here, would stall each one).
            return ["tcpserver", "-q", "-H", "-R", "-l", "0", "-c", "1000", "-b", "4096", "127.0.0.1", str(port),
                    str(self.hello)], None
        if name == "c-epoll":
            return [str(self.tmp / "epoll_server"), str(port), handler], None
        if name == "go":
            return [str(self.tmp / "go_server"), str(port), handler], dict(os.environ, GOMAXPROCS="1")
        if name == "node":
            return ["node", str(PEERS / "node_server.js"), str(port), handler], None
        if name in ("asyncio", "uvloop"):
            extra = ["--uvloop"] if name == "uvloop" else []
            return ["/usr/bin/python3", str(PEERS / "asyncio_server.py"), str(port), handler] + extra, None
        if name == "nginx":
            prefix = self.tmp / f"nginx-{port}"
            prefix.mkdir(exist_ok=True)
            common = {"MODULE": nginx_stream_module() or "", "PREFIX": prefix, "PORT": port}
            if tls:
                content = ('return "Hello from server!\\n";' if handler == "greeting"
                           else f"proxy_pass 127.0.0.1:{backend};")
                conf = fill("nginx-tls.conf.in", CERT=tls["cert"], KEY=tls["key"], CONTENT=content, **common)
            elif balance:
                servers = "\n".join(f"        server 127.0.0.1:{u};" for u in upstreams)
                conf = fill("nginx-balance.conf.in", BALANCE=balance["nginx"], SERVERS=servers, **common)
            elif handler == "greeting":
                conf = fill("nginx.conf.in", **common)
            else:
                return NGINX_NO_ECHO, None
            (prefix / "nginx.conf").write_text(conf)
            return ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")], None
        raise ValueError(name)


def fill(template, **values):
    """A peer's config template from peers/ with its @KEY@s replaced."""
    text = (PEERS / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def has_backend(name, workload):
    """Whether a server relays a TLS workload to the C floor behind it:
    every TLS terminator does, and nginx does for all but the greeting,
    which its stream module's `return` answers itself."""
    if workload not in TLS_WORKLOADS or is_porticod(name):
        return False
    return name != "nginx" or handler_for(workload) != "greeting"


NGINX_NO_ECHO = "nginx stream has no echo: `return` answers and closes at once, so it can neither echo nor hold idle connections"

# Servers that fork a child per connection which lives as long as the
# connection: on persistent connections the parent's /proc/PID/stat (even its
# cutime and cstime, which count only children already reaped) holds none of
# their CPU time, and its VmRSS none of their memory.
FORKS_PER_CONNECTION = {"socat"}
FORK_NOTE = ("forks a process per connection that lives as long as the connection; /proc/PID of the parent "
             "(utime, stime, and cutime/cstime, which count reaped children only) holds none of their CPU time "
             "or memory, so server CPU and RSS are not shown")


def cpu_seconds(pid):
    """utime + stime of one process from /proc, in seconds; None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Scraper:
    """Scrapes a metrics listener once a second, as Prometheus would, for
    as long as it runs; counts the good answers."""

    def __init__(self, port):
        self.port, self.ok, self.failed = port, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.wait(1.0):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                good = data.startswith(b"HTTP/1.1 200 OK") and b"portico_connections_accepted_total" in data
                self.ok, self.failed = self.ok + good, self.failed + (not good)
            except OSError:
                self.failed += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(5)


def rejection_hint(workload):
    """What porticod most likely lacks when it rejects a workload's config."""
    if workload in TLS_WORKLOADS:
        return "no TLS on listeners yet?"
    if workload in BALANCE_WORKLOADS:
        return "no 'balance' key yet?"
    return f"no '{handler_for(workload)}' handler yet?"


def start_floor(peers, cpu, mode, log):
    """The C floor on a free port, pinned to cpu: (process, port), or
    (process, None) if it did not start listening."""
    port = free_port()
    proc = spawn(["taskset", "-c", str(cpu), str(peers.tmp / "epoll_server"), str(port), mode], log)
    return proc, (port if wait_listening(proc, port) else None)


def served_by(proc, log, seconds=3.0):
    """Asks a C floor what it served (SIGUSR1) and reads its answer from its
    log: (connections, bytes), or None if it did not answer in time."""
    before = Path(log).read_text(errors="replace").count("served:")
    os.kill(proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = Path(log).read_text(errors="replace")
        if text.count("served:") > before:
            return parse_served(text)
        time.sleep(0.02)
    return None


def measure(peers, name, workload, args, bench):
    """Runs one server under one workload; returns a result dict."""
    result = {"server": name, "workload": workload}
    handler = handler_for(workload)
    started = []  # stopped in reverse order on the way out
    # Who each started process is, for messages: (process, label, log).
    roles = []
    try:
        ups = []  # the proxies' echo upstreams: (process, port, log)
        if workload in PROXY_WORKLOADS or workload in BALANCE_WORKLOADS:
            # The C floor in echo mode, on CPU 1 with portico-bench, the same
            # for every proxy and for "direct"; four of them to balance over.
            for i in range(BALANCE_UPSTREAMS if workload in BALANCE_WORKLOADS else 1):
                uplog = peers.tmp / f"upstream{i + 1}-{name}-{workload}.log"
                up, upport = start_floor(peers, 1, "echo", uplog)
                started.append(up)
                roles.append((up, "echo upstream", uplog))
                if upport is None:
                    return dict(result, status="failed",
                                reason=f"the echo upstream did not start (exit {up.poll()}): {tail(uplog)}")
                ups.append((up, upport, uplog))
        backend = None  # the C floor behind a TLS front-end: (process, port)
        if has_backend(name, workload):
            # On CPU 0 with the front-end: the two together are the server
            # porticod is measured against, which does both in one process.
            blog = peers.tmp / f"floor-{name}-{workload}.log"
            bproc, bport = start_floor(peers, 0, handler, blog)
            started.append(bproc)
            roles.append((bproc, "C floor behind it", blog))
            if bport is None:
                return dict(result, status="failed",
                            reason=f"the C floor behind it did not start (exit {bproc.poll()}): {tail(blog)}")
            backend = (bproc, bport)
        if name == "direct":
            proc, port, log = ups[0]
        else:
            port = free_port()
            argv, env = peers.command(name, port, workload, [u[1] for u in ups], backend and backend[1])
            if isinstance(argv, str):
                return dict(result, status="skipped", reason=argv)
            log = peers.tmp / f"{name}-{workload}.log"
            proc = spawn(["taskset", "-c", "0"] + argv, log, env)
            started.append(proc)
            roles.append((proc, "server", log))
            if not wait_listening(proc, port):
                code = proc.poll()
                if is_porticod(name) and code == EX_CONFIG:
                    return dict(result, status="skipped",
                                reason=f"porticod rejected the config (exit 78; {rejection_hint(workload)}): {tail(log, 2)}")
                return dict(result, status="failed", reason=f"did not start listening (exit {code}): {tail(log)}")
        # The processes whose CPU time and memory are the server's: it, what
        # it started (hitch's worker), and the C floor a front-end relays to.
        pids, labels = [proc.pid], [name]
        if workload in TLS_WORKLOADS:
            # One handshake as the workload makes them, the chain verified:
            # the server is up, with its workers, and speaks TLS 1.3 as asked.
            problem = tls_check(port, peers.certs[TLS_KEY[workload]]["cert"], handler)
            if problem:
                return dict(result, status="failed", reason=f"{problem} (log: {tail(log)})")
            for child in descendants(proc.pid):
                pids.append(child)
                labels.append(f"{name} child")
        if backend:
            pids.append(backend[0].pid)
            labels.append("C floor")
        mode = bench_mode(workload)
        conns = args.connections
        if is_idle(workload):
            conns = args.tls_idle_connections if workload in TLS_WORKLOADS else args.idle_connections
        cmd = ["taskset", "-c", "1", str(bench), mode, "--port", str(port), "--connections", str(conns),
               "--duration", args.duration, "--warmup", args.warmup, "--size", str(args.stream_size if mode == "stream" else args.size),
               "--server-pid", ",".join(map(str, pids)), "--json"]
        if workload in TLS_WORKLOADS:
            cmd.append("--tls")
        if workload == "tls-resume":
            cmd.append("--tls-resume")
        if workload in BALANCE_WORKLOADS and args.balance_round_trips:
            cmd += ["--round-trips", str(args.balance_round_trips)]
        limit = 120 + parse_seconds(args.duration) + parse_seconds(args.warmup)
        relays = ups and name != "direct"
        up_cpu, wall = ([cpu_seconds(u[0].pid) for u in ups], time.monotonic()) if relays else (None, None)
        scraper = Scraper(peers.metrics_port) if name == "porticod-metrics" else None
        try:
            if scraper:
                with scraper:
                    run = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                                         preexec_fn=die_with_parent)
            else:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, preexec_fn=die_with_parent)
        except subprocess.TimeoutExpired:
            return dict(result, status="failed", reason=f"portico-bench did not finish in {limit:.0f} s")
        if scraper:
            result["note"] = f"scraped /metrics once a second: {scraper.ok} answers, {scraper.failed} failed"
        if name == "porticod-accesslog":
            logged = peers.tmp / f"access-{port}.log"
            lines = sum(1 for _ in open(logged, "rb")) if logged.exists() else 0
            result["note"] = f"access log (file, logfmt): {lines:,} lines written over the run"
        if up_cpu is not None:
            # The upstreams share CPU 1 with portico-bench: their share of
            # that core over the whole bench run (warm-up included; all steady).
            up_now = [cpu_seconds(u[0].pid) for u in ups]
            if None not in up_now and None not in up_cpu:
                result["upstream_cpu_share"] = (sum(up_now) - sum(up_cpu)) / (time.monotonic() - wall)
        try:
            data = json.loads(run.stdout)
        except json.JSONDecodeError:
            return dict(result, status="failed", reason=f"portico-bench exit {run.returncode}: {run.stderr.strip()[-300:]}")
        for p, who, plog in roles:
            if p.poll() is not None:
                return dict(result, status="failed", reason=f"{who} exited during the run ({p.returncode}): {tail(plog)}")
        if run.returncode != 0:
            return dict(result, status="failed", data=data, reason=f"nothing succeeded, errors {data.get('errors')}")
        if name in FORKS_PER_CONNECTION and mode != "greeting":
            data["server_cpu_us_per_op"] = data["server_rss_kb"] = None
            result["note"] = FORK_NOTE
        if len(pids) > 1:
            result["processes"] = labels
        if workload in BALANCE_WORKLOADS:
            # Counted over the whole bench run, warm-up included: the floors
            # cannot know where portico-bench's window lies. Shares, not counts, are the point.
            served = [served_by(u[0], u[2]) for u in ups]
            if None in served:
                result["note"] = "an upstream did not report what it served; no spread shown"
            else:
                result["spread"] = spread(served, args.size)
        return dict(result, status="ok", data=data)
    finally:
        for p in reversed(started):
            stop(p)


def find_bench(path, tmp, log):
    if path:
        return Path(path) if os.access(path, os.X_OK) else None
    default = ROOT / "build" / "portico-bench"
    if os.access(default, os.X_OK):
        return default
    say(f"{default} not found; building portico-bench on its own (cmake -S bench) ...")
    build = Path(tmp) / "bench-build"
    with open(log, "ab") as out:
        for cmd in (["cmake", "-S", str(BENCH_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                     "-DPORTICO_BUILD_TESTS=OFF"], ["cmake", "--build", str(build), "-j2"]):
            if subprocess.run(cmd, stdout=out, stderr=out, timeout=900).returncode != 0:
                return None
    return build / "portico-bench"
