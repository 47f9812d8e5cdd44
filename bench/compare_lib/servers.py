"""Building, starting and measuring each server."""

import json
import os
import subprocess
from pathlib import Path

from .common import BENCH_DIR, EX_CONFIG, PEERS, ROOT, parse_seconds, say
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
        elif name == "go":
            env = dict(os.environ, GOCACHE=str(self.tmp / "gocache"), GOPATH=str(self.tmp / "gopath"),
                       GOPROXY="off", GOFLAGS="", GO111MODULE="off", GOTOOLCHAIN="local")
            rc, out = run_quiet(["go", "build", "-o", str(self.tmp / "go_server"), str(PEERS / "go_server.go")], 300, env)
            reason = None if rc == 0 else f"go build failed: {out[-300:]}"
        self.built[name] = reason
        return reason

    def command(self, name, port, handler):
        """(argv, env) to start a server, or a reason string if it can't do handler."""
        if name == "porticod":
            cfg = self.tmp / f"portico-{handler}-{port}.toml"
            cfg.write_text(f'[daemon]\nlog_level = "warn"\n\n[[listener]]\naddress = "127.0.0.1:{port}"\n'
                           f'handler = "{handler}"\n')
            return [str(self.porticod), "-c", str(cfg)], None
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


def handler_for(workload):
    return "greeting" if workload == "greeting" else "echo"


def measure(peers, name, workload, args, bench):
    """Runs one server under one workload; returns a result dict."""
    result = {"server": name, "workload": workload}
    port = free_port()
    argv, env = peers.command(name, port, handler_for(workload))
    if isinstance(argv, str):
        return dict(result, status="skipped", reason=argv)
    log = peers.tmp / f"{name}-{workload}.log"
    proc = spawn(["taskset", "-c", "0"] + argv, log, env)
    try:
        if not wait_listening(proc, port):
            code = proc.poll()
            if name == "porticod" and code == EX_CONFIG:
                return dict(result, status="skipped",
                            reason=f"porticod rejected the config (exit 78; no '{handler_for(workload)}' handler yet?): {tail(log, 2)}")
            return dict(result, status="failed", reason=f"did not start listening (exit {code}): {tail(log)}")
        conns = args.idle_connections if workload == "idle" else args.connections
        cmd = ["taskset", "-c", "1", str(bench), workload, "--port", str(port), "--connections", str(conns),
               "--duration", args.duration, "--warmup", args.warmup, "--size", str(args.stream_size if workload == "stream" else args.size),
               "--server-pid", str(proc.pid), "--json"]
        limit = 120 + parse_seconds(args.duration) + parse_seconds(args.warmup)
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, preexec_fn=die_with_parent)
        except subprocess.TimeoutExpired:
            return dict(result, status="failed", reason=f"portico-bench did not finish in {limit:.0f} s")
        try:
            data = json.loads(run.stdout)
        except json.JSONDecodeError:
            return dict(result, status="failed", reason=f"portico-bench exit {run.returncode}: {run.stderr.strip()[-300:]}")
        if proc.poll() is not None:
            return dict(result, status="failed", reason=f"server exited during the run ({proc.returncode}): {tail(log)}")
        if run.returncode != 0:
            return dict(result, status="failed", data=data, reason=f"nothing succeeded, errors {data.get('errors')}")
        return dict(result, status="ok", data=data)
    finally:
        stop(proc)


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
