"""Building, starting and measuring each server."""

import json
import os
import pwd
import subprocess
import time
from pathlib import Path

from .common import (BENCH_DIR, EX_CONFIG, PEERS, PROXY_WORKLOADS, ROOT, bench_mode, handler_for, parse_seconds,
                     say)
from .packages import nginx_stream_module
from .processes import die_with_parent, free_port, run_quiet, spawn, stop, tail, wait_listening


class Peers:
    """Knows how to build and start every server; build steps run once."""

    def __init__(self, tmp, porticod, log):
        self.tmp, self.porticod, self.log = Path(tmp), Path(porticod), log
        self.built = {}

    def build(self, name):
        """None when ready to start, else the reason it can't be."""
        if name in self.built:
            return self.built[name]
        reason = None
        if name == "porticod" and not os.access(self.porticod, os.X_OK):
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
        """What a workload needs besides its servers: the proxies' echo upstream
        (the C floor's binary) or the program exec servers spawn. None when
        ready, else the reason it can't run."""
        if workload in PROXY_WORKLOADS:
            reason = self.build("c-epoll")
            return reason and f"the echo upstream (peers/epoll_server.c) did not build: {reason}"
        if workload == "exec":
            return self.build("hello")
        return None

    def command(self, name, port, handler, upstream=None):
        """(argv, env) to start a server, or a reason string if it can't do handler.
        upstream: the echo server's port, for proxies."""
        if name == "porticod":
            cfg = self.tmp / f"portico-{handler}-{port}.toml"
            # As root porticod refuses to serve unless told it may (exit 78).
            daemon = "allow_root = true\n" if os.geteuid() == 0 else ""
            options = ""
            if handler == "proxy":
                options = f'upstream = ["127.0.0.1:{upstream}"]\n'
            elif handler == "exec":
                options = f'command = ["{self.hello}"]\n'
            # Defaults throughout, the log level included: what an installed
            # porticod does.
            cfg.write_text(f'[daemon]\n{daemon}\n[[listener]]\naddress = "127.0.0.1:{port}"\n'
                           f'handler = "{handler}"\n{options}')
            return [str(self.porticod), "-c", str(cfg)], None
        if name == "haproxy":
            cfg = self.tmp / f"haproxy-{port}.cfg"
            conf = (PEERS / "haproxy.cfg.in").read_text()
            cfg.write_text(conf.replace("@PORT@", str(port)).replace("@UPSTREAM@", str(upstream)))
            return ["haproxy", "-db", "-f", str(cfg)], None
        if name == "socat":
            return ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
                    f"TCP:127.0.0.1:{upstream}"], None
        if name == "xinetd":
            cfg = self.tmp / f"xinetd-{port}.conf"
            log = self.tmp / f"xinetd-{port}.log"
            conf = (PEERS / "xinetd.conf.in").read_text()
            for key, value in (("@PORT@", port), ("@SERVER@", self.hello), ("@LOG@", log),
                               ("@USER@", pwd.getpwuid(os.geteuid()).pw_name)):
                conf = conf.replace(key, str(value))
            cfg.write_text(conf)
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
            if handler != "greeting":
                return NGINX_NO_ECHO, None
            prefix = self.tmp / f"nginx-{port}"
            prefix.mkdir(exist_ok=True)
            conf = (PEERS / "nginx.conf.in").read_text()
            conf = conf.replace("@MODULE@", nginx_stream_module() or "").replace("@PREFIX@", str(prefix))
            conf = conf.replace("@PORT@", str(port))
            (prefix / "nginx.conf").write_text(conf)
            return ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")], None
        raise ValueError(name)


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


def measure(peers, name, workload, args, bench):
    """Runs one server under one workload; returns a result dict."""
    result = {"server": name, "workload": workload}
    handler = handler_for(workload)
    started = []  # stopped in reverse order on the way out
    try:
        upstream = None
        if workload in PROXY_WORKLOADS:
            # The proxies' upstream: the C floor in echo mode, on CPU 1 with
            # portico-bench, the same for every proxy and for "direct".
            upstream = free_port()
            uplog = peers.tmp / f"upstream-{name}-{workload}.log"
            up = spawn(["taskset", "-c", "1", str(peers.tmp / "epoll_server"), str(upstream), "echo"], uplog)
            started.append(up)
            if not wait_listening(up, upstream):
                return dict(result, status="failed", reason=f"the echo upstream did not start (exit {up.poll()}): {tail(uplog)}")
        if name == "direct":
            proc, port, log = up, upstream, uplog
        else:
            port = free_port()
            argv, env = peers.command(name, port, handler, upstream)
            if isinstance(argv, str):
                return dict(result, status="skipped", reason=argv)
            log = peers.tmp / f"{name}-{workload}.log"
            proc = spawn(["taskset", "-c", "0"] + argv, log, env)
            started.append(proc)
            if not wait_listening(proc, port):
                code = proc.poll()
                if name == "porticod" and code == EX_CONFIG:
                    return dict(result, status="skipped",
                                reason=f"porticod rejected the config (exit 78; no '{handler}' handler yet?): {tail(log, 2)}")
                return dict(result, status="failed", reason=f"did not start listening (exit {code}): {tail(log)}")
        mode = bench_mode(workload)
        conns = args.idle_connections if workload == "idle" else args.connections
        cmd = ["taskset", "-c", "1", str(bench), mode, "--port", str(port), "--connections", str(conns),
               "--duration", args.duration, "--warmup", args.warmup, "--size", str(args.stream_size if mode == "stream" else args.size),
               "--server-pid", str(proc.pid), "--json"]
        limit = 120 + parse_seconds(args.duration) + parse_seconds(args.warmup)
        up_cpu, wall = (cpu_seconds(up.pid), time.monotonic()) if upstream and name != "direct" else (None, None)
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, preexec_fn=die_with_parent)
        except subprocess.TimeoutExpired:
            return dict(result, status="failed", reason=f"portico-bench did not finish in {limit:.0f} s")
        if up_cpu is not None:
            # The upstream shares CPU 1 with portico-bench: its share of that
            # core over the whole bench run (warm-up included; both steady).
            up_now = cpu_seconds(up.pid)
            if up_now is not None:
                result["upstream_cpu_share"] = (up_now - up_cpu) / (time.monotonic() - wall)
        try:
            data = json.loads(run.stdout)
        except json.JSONDecodeError:
            return dict(result, status="failed", reason=f"portico-bench exit {run.returncode}: {run.stderr.strip()[-300:]}")
        for p in started:
            if p.poll() is not None:
                who, plog = ("server", log) if p is proc else ("echo upstream", uplog)
                return dict(result, status="failed", reason=f"{who} exited during the run ({p.returncode}): {tail(plog)}")
        if run.returncode != 0:
            return dict(result, status="failed", data=data, reason=f"nothing succeeded, errors {data.get('errors')}")
        if name in FORKS_PER_CONNECTION and mode != "greeting":
            data["server_cpu_us_per_op"] = data["server_rss_kb"] = None
            result["note"] = FORK_NOTE
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
