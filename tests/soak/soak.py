#!/usr/bin/python3
"""Soak test of porticod: every handler type at once, well-behaved and hostile
clients, reloads and binary upgrades, then the daemon must be as it was.

Runs the real porticod (build/porticod, built when missing) with one
listener per handler type and a few with limits, all on 127.0.0.1 port 0.
For --minutes (default 1) it keeps at most --clients connections open at
once, reloads every --reload-every seconds (cycling through three configs:
options changed, a listener added in the middle, removed again), and sends
SIGUSR2 (binary upgrade) --upgrades times. Then it stops its clients and
checks:

- no client outcome outside what its kind expects (a silent client closed
  by a timeout, a flood refused by a limit, every other byte exact);
- porticod's open descriptors equal to their baseline and its RSS within
  a tolerance of it (see RSS_SLACK_KIB), no exec child left, no zombie;
- every reload completed, every upgrade replaced the process and the old
  one exited 0;
- every log line well-formed (timestamp, level, no control byte) and from
  a known source (listener names and client addresses the soak used);
- SIGTERM: exit status 0 within shutdown_timeout.

It prints a summary table and exits 1 with the reasons when a check
fails. Loopback only (127.0.0.0/8); everything it starts is killed when it
ends, even when it is killed itself (a guard process does that).
Standard library only, for Debian's /usr/bin/python3.
"""

import argparse
import asyncio
import collections
import ctypes
import datetime
import errno
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MAX_CLIENTS = 200  # the hard cap on connections open at once, whatever --clients says
SHUTDOWN_TIMEOUT = 30  # s; longer than any connection the soak makes can live (session_timeout 20 s)
SESSION_TIMEOUT = 20
READ_TIMEOUT = 3  # greeting
IDLE_TIMEOUTS = (3, 4)  # echo's idle_timeout in configs A and B
IDLE_TIMEOUT = 3  # every other idle_timeout
PP_TIMEOUT = 2  # proxy_protocol_timeout
TLS_TIMEOUT = 3  # tls_handshake_timeout
EXEC_TIMEOUT = 5
CHARGEN_LINES = 200
LIMITED_PER_SOURCE = 3
LIMITED_MAX = 6
EXEC_LIMITED = 2
RATES = (10, 15)  # rate of the "rate" listener in configs A and B
BURST = 5
# A client never waits longer than this for anything; a server that takes
# longer is an unexpected outcome, not a hang of the soak.
CLIENT_DEADLINE = SESSION_TIMEOUT + 15
# RSS may end above its baseline by this much. glibc keeps freed memory in
# its arenas instead of giving every page back (fragmentation after a peak
# of 200 connections with buffers of up to 256 KiB each, the arena of the
# thread that reads reloads), which measured 0.5 to 2.5 MiB here. A leak of
# 100 bytes per connection shows over the 40 000+ connections of a 1-minute
# run as 4 MiB, and over a 10-minute run as 40 MiB.
RSS_SLACK_KIB = 6 * 1024

GREETINGS = (b"soak greeting A\n", b"soak greeting B\n")
DEFAULT_GREETING = b"Hello from server!\n"  # of "limited" and "rate"
BANNER = b"soak banner\r\n"
EXTRA = b"soak extra\r\n"
TLS_GREETING = b"soak tls greeting\n"
LEVELS = ("trace", "debug", "info", "warning", "error", "critical")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (%s) (\S.*)$" % "|".join(LEVELS))
SERVING = re.compile(r"^serving (\S+) on 127\.0\.0\.1:(\d+) \((\w+)\)$")
TAGGED = re.compile(r"^\[(\S+) (\S+)\] ")
PP_SOURCES = ("192.0.2.", "198.51.100.")  # the client addresses PROXY headers claim

WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
DAYTIME = re.compile(rb"^(%s), (%s) (\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)-UTC\r\n$" % (WEEKDAYS.encode(), MONTHS.encode()))


def chargen_expected(lines):
    out = bytearray()
    for line in range(lines):
        out += bytes(32 + (line + i) % 95 for i in range(72)) + b"\r\n"
    return bytes(out)


CHARGEN = chargen_expected(CHARGEN_LINES)


def log(message):
    print("soak: " + message, flush=True)


# --- processes ---------------------------------------------------------------

libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] == pid:
                out.append((int(entry), stat[0]))
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for child, _ in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_kinds(pid):
    kinds = collections.Counter()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kinds[target.split(":")[0] if ":" in target else "file"] += 1
    except OSError:
        pass
    return dict(kinds)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def catches(pid, sig):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    except OSError:
        pass
    return False


GUARD = r"""
import os, signal, sys
# Kills what the soak started once the soak is gone, however it went:
# its stdin (a pipe from the soak) then reads EOF.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
known = set()
for line in sys.stdin:
    pid, start = line.split()
    known.add((int(pid), start))
def stat(pid):
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    f = text[text.rindex(")") + 2:].split()
    return int(f[1]), f[19]
def kids(pid):
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and (stat(int(e)) or (0,))[0] == pid]
for pid, start in known:
    s = stat(pid)
    if s is None or s[1] != start:
        continue
    todo, victims = [pid], []
    while todo:
        p = todo.pop()
        victims.append(p)
        todo.extend(kids(p))
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
"""


class Processes:
    """Every porticod the soak knows of, and the guard that kills them."""

    def __init__(self):
        self.guard = subprocess.Popen([sys.executable, "-c", GUARD], stdin=subprocess.PIPE,
                                      start_new_session=True, text=True)
        self.pids = []

    def add(self, pid):
        stat = proc_stat(pid)
        if stat is None:
            return
        self.pids.append(pid)
        self.guard.stdin.write(f"{pid} {stat[2]}\n")
        self.guard.stdin.flush()

    def kill_all(self):
        for pid in self.pids:
            if proc_stat(pid) is None:
                continue
            for p in [pid] + descendants(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.guard.stdin.close()
        self.guard.wait()


async def wait_exit(pid, timeout):
    """Exit status of our child `pid`, or None when it is still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "not our child"
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)


# --- configuration -----------------------------------------------------------

def make_config(variant, work, upstreams):
    """Config A (variant 0), B (1: options changed) or C (2: B with "extra" in the middle)."""
    b = 1 if variant else 0
    cert, key = f"{work}/cert.pem", f"{work}/key.pem"
    tls = f'tls_certificate = "{cert}"\ntls_key = "{key}"\ntls_handshake_timeout = "{TLS_TIMEOUT}s"\n'
    listeners = [
        ("greeting", f'handler = "greeting"\nmessage = "{GREETINGS[b].decode()[:-1]}\\n"\n'
                     f'read_timeout = "{READ_TIMEOUT}s"\n'),
        ("banner", 'handler = "greeting"\nmode = "on-connect"\nmessage = "soak banner\\r\\n"\n'),
        ("echo", f'handler = "echo"\nidle_timeout = "{IDLE_TIMEOUTS[b]}s"\nsession_timeout = "{SESSION_TIMEOUT}s"\n'
                 'keepalive = true\n'),
        ("discard", f'handler = "discard"\nidle_timeout = "{IDLE_TIMEOUT}s"\nsession_timeout = "{SESSION_TIMEOUT}s"\n'),
        ("daytime", 'handler = "daytime"\n'),
    ]
    if variant == 2:
        # In the middle of the list: a reload must not shift its neighbours' sockets.
        listeners.append(("extra", 'handler = "greeting"\nmode = "on-connect"\nmessage = "soak extra\\r\\n"\n'))
    listeners += [
        ("time", 'handler = "time"\n'),
        ("chargen", f'handler = "chargen"\nline_limit = {CHARGEN_LINES}\nsession_timeout = "{SESSION_TIMEOUT}s"\n'),
        ("exec", f'handler = "exec"\ncommand = ["/usr/bin/tr", "a-z", "A-Z"]\nmax_instances = 64\n'
                 f'timeout = "{EXEC_TIMEOUT}s"\n'),
        ("exec-limited", f'handler = "exec"\ncommand = ["/bin/cat"]\nmax_instances = {EXEC_LIMITED}\n'
                         f'timeout = "{EXEC_TIMEOUT}s"\nstderr = "null"\n'),
        ("proxy", f'handler = "proxy"\nupstream = ["127.0.0.1:{upstreams["echo"]}"]\nconnect_timeout = "2s"\n'
                  f'idle_timeout = "{IDLE_TIMEOUT}s"\nsession_timeout = "{SESSION_TIMEOUT}s"\n'),
        ("proxy-v1", f'handler = "proxy"\nupstream = ["127.0.0.1:{upstreams["pp-echo"]}"]\nsend_proxy = "v1"\n'
                     f'idle_timeout = "{IDLE_TIMEOUT}s"\nsession_timeout = "{SESSION_TIMEOUT}s"\n'),
        ("pp", f'handler = "echo"\nproxy_protocol = true\nproxy_protocol_timeout = "{PP_TIMEOUT}s"\n'
               f'idle_timeout = "{IDLE_TIMEOUT}s"\nsession_timeout = "{SESSION_TIMEOUT}s"\n'),
        ("tls-echo", f'handler = "echo"\n{tls}idle_timeout = "{IDLE_TIMEOUT}s"\nsession_timeout = "{SESSION_TIMEOUT}s"\n'),
        ("tls-greeting", f'handler = "greeting"\nmessage = "soak tls greeting\\n"\nread_timeout = "{READ_TIMEOUT}s"\n{tls}'),
        ("limited", f'handler = "greeting"\ndefer_accept = "0s"\nmax_connections = {LIMITED_MAX}\non_limit = "reject"\n'
                    f'max_per_source = {LIMITED_PER_SOURCE}\nread_timeout = "{READ_TIMEOUT}s"\n'),
        ("rate", f'handler = "greeting"\nrate = {RATES[b]}\nburst = {BURST}\nread_timeout = "{READ_TIMEOUT}s"\n'),
    ]
    user = 'user = "nobody"\n' if os.geteuid() == 0 else ""
    text = (f'[daemon]\nlog_level = "info"\nshutdown_timeout = "{SHUTDOWN_TIMEOUT}s"\nmax_connections = 1000\n'
            f'pid_file = "{work}/run/porticod.pid"\n{user}')
    for name, body in listeners:
        text += f'\n[[listener]]\nname = "{name}"\naddress = "127.0.0.1:0"\n{body}'
    return text


# --- results -----------------------------------------------------------------

class Results:
    def __init__(self):
        self.outcomes = collections.defaultdict(collections.Counter)  # (kind, listener) -> label -> n
        self.unexpected = []  # (time, kind, listener, label, detail)
        self.unexpected_count = 0
        self.failures = []  # check failures, with reasons
        self.notes = []
        self.open = 0
        self.peak_open = 0

    def record(self, kind, listener, label, expected, detail=""):
        self.outcomes[(kind, listener)][label] += 1
        if not expected:
            self.unexpected_count += 1
            if len(self.unexpected) < 40:
                self.unexpected.append((time.strftime("%H:%M:%S"), kind, listener, label, detail))

    def fail(self, reason):
        log("FAIL: " + reason)
        self.failures.append(reason)


class Unexpected(Exception):
    """A client saw something its kind does not allow: label and detail."""

    def __init__(self, label, detail=""):
        super().__init__(label)
        self.label = label
        self.detail = detail


# --- the soak ------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.results = Results()
        self.ports = {}  # listener name -> port, from the "serving" lines
        self.handlers = {}
        self.log_path = None
        self.log_offset = 0
        self.log_partial = b""
        self.log_lines = 0
        self.log_bad = []
        self.log_bad_count = 0
        self.levels = collections.Counter()
        self.messages = collections.Counter()  # families of log messages, for the summary
        self.reloads_complete = 0
        self.reloads_failed = 0
        self.reloads_sent = 0
        self.upgrades = []  # (old pid, new pid, seconds the old one took to exit, its status)
        self.upgrade_skipped = None
        self.old_exits = []  # tasks: each upgrade's old process ending
        self.variant = 0
        self.generation = 0  # bumped by every reload and upgrade: the limit checks skip bursts across one
        self.extra_open = asyncio.Event()
        self.extra_clients = 0
        self.extra_idle = asyncio.Event()
        self.stopping = False
        self.pid = None
        self.first_pid = None
        self.zombie_since = {}
        self.max_children = 0
        self.samples = []  # (t, pid, fds, rss)
        self.control = asyncio.Lock()  # one reload or upgrade at a time
        self.slots = None
        self.started = time.time()
        self.known_names = set()
        self.limit_bursts = collections.Counter()

    # --- daemon and its log ---------------------------------------------------

    def read_log(self):
        """Reads what the log gained; checks every complete line."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            data = f.read()
        self.log_offset += len(data)
        data = self.log_partial + data
        lines = data.split(b"\n")
        self.log_partial = lines.pop()
        for raw in lines:
            self.check_line(raw)

    def bad_line(self, raw, why):
        self.log_bad_count += 1
        if len(self.log_bad) < 10:
            self.log_bad.append(f"{why}: {raw[:200]!r}")

    def check_line(self, raw):
        self.log_lines += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.bad_line(raw, "not UTF-8")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line):
            return self.bad_line(raw, "raw control character")
        m = LOG_LINE.match(line)
        if not m:
            return self.bad_line(raw, "not a porticod log line")
        stamp, level, message = m.groups()
        when = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if not self.started - 120 < when < time.time() + 120:
            return self.bad_line(raw, "timestamp outside the run")
        self.levels[level] += 1
        tag = TAGGED.match(message)
        if tag:
            name, client = tag.groups()
            host = client.rsplit(":", 1)[0]
            if name not in self.known_names:
                return self.bad_line(raw, f"unknown listener {name!r}")
            if not (host.startswith("127.") or host.startswith(PP_SOURCES)):
                return self.bad_line(raw, f"unknown client {client!r}")
            message = message[tag.end():]
        serving = SERVING.match(message)
        if serving:
            name, port, handler = serving.group(1), int(serving.group(2)), serving.group(3)
            if name not in self.known_names:
                return self.bad_line(raw, f"serving an unknown listener {name!r}")
            if name in self.ports and self.ports[name] != port and name != "extra":
                self.results.fail(f"listener {name} moved from port {self.ports[name]} to {port}")
            self.ports[name] = port
            self.handlers[name] = handler
        elif message.startswith("reload complete"):
            self.reloads_complete += 1
        elif message.startswith("reload failed"):
            self.reloads_failed += 1
            self.results.fail("reload failed: " + message)
        if level in ("error", "critical"):
            self.results.fail("logged at the " + level + " level: " + message)
        self.messages[message_family(message)] += 1

    async def start_daemon(self, processes):
        a = self.args
        config = self.config_path
        self.write_config(0)
        self.log_path = f"{self.work}/porticod.log"
        logfile = open(self.log_path, "ab")
        proc = subprocess.Popen([a.porticod, "-c", config], stdin=subprocess.DEVNULL, stdout=logfile,
                                stderr=logfile, start_new_session=True)
        logfile.close()
        self.pid = self.first_pid = proc.pid
        processes.add(proc.pid)
        expected = {name for name in self.known_names if name != "extra"}
        deadline = time.monotonic() + 15
        while set(self.ports) != expected:
            await asyncio.sleep(0.05)
            self.read_log()
            status = await wait_exit(proc.pid, 0)
            if status is not None:
                raise SystemExit(f"soak: porticod exited with status {status} at start; its log:\n"
                                 + open(self.log_path, errors="replace").read())
            if time.monotonic() > deadline:
                raise SystemExit("soak: porticod did not log its listeners within 15 s")
        for name in expected:
            if self.handlers[name] != self.expected_handler(name):
                self.results.fail(f"listener {name} serves {self.handlers[name]}")

    @staticmethod
    def expected_handler(name):
        return {"banner": "greeting", "extra": "greeting", "tls-greeting": "greeting", "limited": "greeting",
                "rate": "greeting", "exec-limited": "exec", "proxy-v1": "proxy", "pp": "echo",
                "tls-echo": "echo"}.get(name, name)

    def write_config(self, variant):
        tmp = self.config_path + ".new"
        with open(tmp, "w") as f:
            f.write(make_config(variant, self.work, self.upstream_ports))
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.config_path)

    async def signal_and_wait(self, sig, what, count_attr, timeout=15):
        before = getattr(self, count_attr) + self.reloads_failed
        os.kill(self.pid, sig)
        deadline = time.monotonic() + timeout
        while getattr(self, count_attr) + self.reloads_failed == before:
            if time.monotonic() > deadline:
                self.results.fail(f"{what}: no \"reload complete\" within {timeout} s")
                return False
            await asyncio.sleep(0.05)
            self.read_log()
        return True

    async def reload(self, variant):
        """Applies config `variant` with a SIGHUP and waits for it to complete."""
        async with self.control:
            if self.variant == 2 and variant != 2:
                # "extra" goes away: its clients stop first, since a client of
                # a removed listener is refused on purpose.
                self.extra_open.clear()
                while self.extra_clients:
                    await asyncio.sleep(0.05)
            self.write_config(variant)
            self.generation += 1
            self.reloads_sent += 1
            ok = await self.signal_and_wait(signal.SIGHUP, f"reload to config {'ABC'[variant]}", "reloads_complete")
            self.generation += 1
            self.variant = variant
            if variant == 2 and ok:
                # Its "serving" line comes before "reload complete".
                self.read_log()
                if "extra" in self.ports and self.handlers.get("extra") == "greeting":
                    self.extra_open.set()
                else:
                    self.results.fail("config C: no \"serving extra\" line")
            if variant != 2:
                self.ports.pop("extra", None)

    async def reloader(self, until):
        cycle = (1, 2, 0)
        i = 0
        while time.monotonic() < until - self.args.reload_every:
            await asyncio.sleep(self.args.reload_every * self.rng.uniform(0.7, 1.3))
            if self.stopping:
                break
            await self.reload(cycle[i % 3])
            i += 1

    async def upgrade(self):
        async with self.control:
            old = self.pid
            if not catches(old, signal.SIGUSR2):
                if self.upgrade_skipped is None:
                    self.upgrade_skipped = "this porticod does not handle SIGUSR2 (binary upgrade): step skipped"
                    log("note: " + self.upgrade_skipped)
                return
            self.generation += 1
            log_from = self.log_offset
            os.kill(old, signal.SIGUSR2)
            sent = time.monotonic()
            new = None
            while time.monotonic() < sent + 15:
                await asyncio.sleep(0.1)
                self.read_log()
                try:
                    with open(self.pid_path) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    continue
                if pid and pid != old and proc_stat(pid) is not None:
                    new = pid
                    break
            if new is None:
                if proc_stat(old) is None or proc_stat(old)[0] == "Z":
                    self.results.fail(f"SIGUSR2: porticod {old} is gone and no new process took over")
                    return
                self.upgrade_skipped = "SIGUSR2 sent, but no new pid in the pid file within 15 s: step skipped"
                log("note: " + self.upgrade_skipped)
                with open(self.log_path, "rb") as f:
                    f.seek(log_from)
                    for line in f.read().decode(errors="replace").splitlines()[-10:]:
                        log("  log: " + line)
                return
            self.processes.add(new)
            self.pid = new
            self.generation += 1
            log(f"binary upgrade: porticod {old} -> {new}")
            # Reloads go on meanwhile, to the new process.
            self.old_exits.append(asyncio.create_task(self.old_exit(old, new, sent)))

    async def old_exit(self, old, new, sent):
        """The old process finishes its connections and exits 0; the pid file keeps the new pid."""
        status = await wait_exit(old, SHUTDOWN_TIMEOUT + 10)
        took = time.monotonic() - sent
        if status is None:
            self.results.fail(f"upgrade: the old porticod {old} still runs {took:.0f} s after SIGUSR2")
        elif status != 0:
            self.results.fail(f"upgrade: the old porticod {old} exited with status {status}")
        self.upgrades.append((old, new, took, status))
        try:
            with open(self.pid_path) as f:
                in_file = f.read().strip()
        except OSError as e:
            in_file = f"({e.strerror})"
        if self.pid == new and in_file != str(new):
            self.results.fail(f"upgrade: once the old porticod {old} exited, the pid file holds {in_file}, not {new}")

    async def upgrader(self, until, count):
        if count <= 0:
            return
        span = until - time.monotonic()
        for i in range(count):
            at = until - span + span * (i + 0.5) / count
            await asyncio.sleep(max(0, at - time.monotonic()))
            if self.stopping:
                break
            await self.upgrade()

    async def monitor(self):
        """Samples porticod every second; watches for zombies and for its death."""
        while not self.stopping:
            self.read_log()
            pid = self.pid
            if proc_stat(pid) is None or proc_stat(pid)[0] == "Z":
                if pid == self.pid:
                    self.results.fail(f"porticod {pid} died")
                    self.stopping = True
                    return
            self.check_children(pid)
            self.samples.append((time.monotonic(), pid, fd_count(pid), rss_kib(pid)))
            await asyncio.sleep(1)

    def check_children(self, pid):
        kids = children(pid)
        self.max_children = max(self.max_children, len(kids))
        now = time.monotonic()
        zombies = {child for child, state in kids if state == "Z"}
        for child in zombies:
            since = self.zombie_since.setdefault(child, now)
            # A child is a zombie between its exit and porticod's waitpid:
            # one loop turn. Three seconds is a child nobody reaps.
            if now - since > 3:
                self.results.fail(f"zombie: exec child {child} of porticod {pid} unreaped for {now - since:.0f} s")
                self.zombie_since[child] = float("inf")
        for child in list(self.zombie_since):
            if child not in zombies:
                del self.zombie_since[child]
        return kids

    # --- clients ----------------------------------------------------------------

    async def connect(self, name, source="127.0.0.1", tls=None):
        port = self.ports[name]
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), ssl=tls,
                                        server_hostname="localhost" if tls else None,
                                        ssl_handshake_timeout=10 if tls else None), 10)
        except ConnectionRefusedError:
            raise Unexpected("connect_refused", f"port {port}")
        except asyncio.TimeoutError:
            raise Unexpected("connect_timeout", f"port {port}")
        except ssl.SSLError as e:
            raise Unexpected("tls_error", str(e))
        return reader, writer

    async def read_all(self, reader, limit=1 << 22):
        data = bytearray()
        while len(data) <= limit:
            chunk = await reader.read(65536)
            if not chunk:
                return bytes(data)
            data += chunk
        raise Unexpected("too_much", f"more than {limit} bytes")

    async def closed_without_bytes(self, reader, start, at_least, detail):
        """The server must close (EOF or reset) without sending, no sooner than `at_least` s after `start`.

        `start` is taken before connecting: the server's timer starts when it
        accepts, later still, while this loop may see the connection complete
        late (hundreds of milliseconds on a busy machine)."""
        try:
            data = await self.read_all(reader)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        elapsed = time.monotonic() - start
        if data:
            raise Unexpected("wrong_bytes", f"{detail}: got {data[:40]!r}")
        if elapsed < at_least - 0.25:
            raise Unexpected("early_close", f"{detail}: closed after {elapsed:.2f} s, expected {at_least} s")
        return "timed_out" if at_least else "refused"

    def tls_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(f"{self.work}/cert.pem")
        return ctx

    def payload(self, size=None):
        size = size or int(2 ** self.rng.uniform(0, 16))  # 1 B to 64 KiB, as many small as large
        return self.rng.randbytes(size)

    async def round_trips(self, reader, writer, count=None):
        for _ in range(count or self.rng.randint(1, 8)):
            data = self.payload()
            writer.write(data)
            await writer.drain()
            back = await reader.readexactly(len(data))
            if back != data:
                raise Unexpected("wrong_bytes", f"{len(data)} bytes sent, others came back")

    async def close(self, writer):
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass

    def reset(self, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    # Well-behaved clients: every byte checked, nothing but "ok" expected.

    async def good(self, name):
        tls = self.tls_context() if name.startswith("tls-") else None
        reader, writer = await self.connect(name, tls=tls)
        try:
            if name in ("greeting", "tls-greeting", "rate", "limited"):
                writer.write(b"GET / soak\r\n")
                data = await self.read_all(reader)
                allowed = {"tls-greeting": (TLS_GREETING,), "greeting": GREETINGS}.get(name, (DEFAULT_GREETING,))
                if data not in allowed:
                    raise Unexpected("wrong_bytes", f"{data[:60]!r}")
            elif name in ("banner", "extra"):
                data = await self.read_all(reader)
                if data != (BANNER if name == "banner" else EXTRA):
                    raise Unexpected("wrong_bytes", f"{data[:60]!r}")
            elif name in ("echo", "proxy", "proxy-v1", "tls-echo"):
                await self.round_trips(reader, writer)
            elif name == "pp":
                writer.write(self.proxy_header())
                await self.round_trips(reader, writer)
            elif name == "discard":
                writer.write(self.payload(self.rng.randint(1, 1 << 18)))
                writer.write_eof()
                data = await self.read_all(reader)
                if data:
                    raise Unexpected("wrong_bytes", f"discard sent {len(data)} bytes")
            elif name == "daytime":
                self.check_daytime(await self.read_all(reader))
            elif name == "time":
                self.check_time(await self.read_all(reader))
            elif name == "chargen":
                data = await self.read_all(reader)
                if data != CHARGEN:
                    raise Unexpected("wrong_bytes", f"chargen: {len(data)} bytes, not the {CHARGEN_LINES} lines")
            elif name == "exec":
                data = self.payload(self.rng.randint(1, 1 << 14))
                writer.write(data)
                writer.write_eof()
                back = await self.read_all(reader)
                if back != data.upper():
                    raise Unexpected("wrong_bytes", f"exec: {len(data)} bytes sent, {len(back)} back, not tr's")
            else:
                raise AssertionError(name)
        finally:
            await self.close(writer)
        return "ok"

    def check_daytime(self, data):
        m = DAYTIME.match(data)
        if not m:
            raise Unexpected("wrong_bytes", f"daytime: {data[:60]!r}")
        stamp = time.strptime(data[:-6].decode(), "%A, %B %d, %Y %H:%M:%S")
        skew = abs(time.mktime(stamp) - time.mktime(time.gmtime()))
        if skew > 5 or time.strftime("%A", stamp) != m.group(1).decode():
            raise Unexpected("wrong_bytes", f"daytime {data!r} is {skew:.0f} s off")

    def check_time(self, data):
        if len(data) != 4:
            raise Unexpected("wrong_bytes", f"time: {len(data)} bytes")
        skew = abs(struct.unpack("!I", data)[0] - 2208988800 - time.time())
        if skew > 5:
            raise Unexpected("wrong_bytes", f"time is {skew:.0f} s off")

    def proxy_header(self):
        src = self.rng.choice(PP_SOURCES) + str(self.rng.randint(1, 254))
        sport = self.rng.randint(1024, 65535)
        if self.rng.random() < 0.5:
            return f"PROXY TCP4 {src} 127.0.0.1 {sport} {self.ports['pp']}\r\n".encode()
        addresses = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, self.ports["pp"])
        return b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(addresses)) + addresses

    # Half-close: the client shuts its sending side, then reads everything.

    async def half_close(self, name):
        reader, writer = await self.connect(name)
        try:
            if name == "greeting":
                writer.write(b"hi\n")
                writer.write_eof()
                if await self.read_all(reader) not in GREETINGS:
                    raise Unexpected("wrong_bytes", "greeting after a half-close")
            else:  # echo, proxy, exec
                data = self.payload()
                writer.write(data)
                writer.write_eof()
                back = await self.read_all(reader)
                if back != (data.upper() if name == "exec" else data):
                    raise Unexpected("wrong_bytes", f"{len(data)} bytes sent before a half-close, {len(back)} back")
        finally:
            await self.close(writer)
        return "ok"

    # Silent clients: connect and say nothing.

    SILENT_TIMEOUTS = {"greeting": READ_TIMEOUT, "echo": min(IDLE_TIMEOUTS), "discard": IDLE_TIMEOUT,
                       "proxy": IDLE_TIMEOUT, "pp": PP_TIMEOUT, "tls-echo": TLS_TIMEOUT,
                       "tls-greeting": TLS_TIMEOUT, "exec": EXEC_TIMEOUT}

    async def silent(self, name):
        if name not in self.SILENT_TIMEOUTS:  # the server speaks first: served as usual
            return await self.good(name)
        start = time.monotonic()
        reader, writer = await self.connect(name)
        try:
            return await self.closed_without_bytes(reader, start, self.SILENT_TIMEOUTS[name], f"silent on {name}")
        finally:
            await self.close(writer)

    # Slowloris: one byte a second.

    async def slowloris(self, name):
        start = time.monotonic()  # before connecting, as in closed_without_bytes
        reader, writer = await self.connect(name)
        try:
            if name == "greeting":
                writer.write(b"G")
                if await self.read_all(reader) not in GREETINGS:
                    raise Unexpected("wrong_bytes", "slowloris greeting")
                return "ok"
            if name in ("pp", "tls-echo"):
                stream = b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n" if name == "pp" else self.client_hello()
                limit = PP_TIMEOUT if name == "pp" else TLS_TIMEOUT
                for byte in stream:
                    try:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        got = await asyncio.wait_for(reader.read(1024), 1)
                    except asyncio.TimeoutError:
                        continue
                    except (ConnectionResetError, BrokenPipeError):
                        got = b""
                    if got and name == "tls-echo" and got[0] == 0x15:
                        got = b""  # a TLS alert before the close
                    if got:
                        raise Unexpected("wrong_bytes", f"slowloris {name}: {got[:40]!r}")
                    elapsed = time.monotonic() - start
                    if elapsed < limit - 0.25:
                        raise Unexpected("early_close", f"slowloris {name}: closed after {elapsed:.2f} s")
                    return "timed_out"
                raise Unexpected("not_closed", f"slowloris {name}: still open after {len(stream)} s")
            # echo and discard: a byte a second keeps the idle timeout away;
            # the session timeout ends the longer ones.
            budget = self.rng.uniform(4, SESSION_TIMEOUT + 6)
            while time.monotonic() - start < budget:
                byte = bytes([self.rng.randrange(256)])
                try:
                    writer.write(byte)
                    await writer.drain()
                    if name == "echo":
                        back = await reader.read(1)
                    else:
                        try:
                            back = await asyncio.wait_for(reader.read(1), 1)
                        except asyncio.TimeoutError:
                            continue
                except (ConnectionResetError, BrokenPipeError):
                    back = b""
                if back == byte and name == "echo":
                    await asyncio.sleep(1)
                    continue
                if back:
                    raise Unexpected("wrong_bytes", f"slowloris {name}: {back!r} for {byte!r}")
                elapsed = time.monotonic() - start
                if elapsed < SESSION_TIMEOUT - 0.25:
                    raise Unexpected("early_close", f"slowloris {name}: closed after {elapsed:.2f} s")
                return "timed_out"
            return "ok"
        finally:
            await self.close(writer)

    def client_hello(self):
        obj = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(),
                                                                server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return out.read()

    # Garbage: random bytes where a protocol is expected.

    async def garbage(self, name):
        reader, writer = await self.connect(name)
        try:
            if name == "greeting":  # read once, at most 100 bytes, whatever they are
                writer.write(self.payload(self.rng.randint(1, 100)))
                if await self.read_all(reader) not in GREETINGS:
                    raise Unexpected("wrong_bytes", "greeting after garbage")
                return "ok"
            if name in ("echo", "exec", "discard"):
                data = self.payload()
                writer.write(data)
                writer.write_eof()
                back = await self.read_all(reader)
                want = {"echo": data, "exec": data.upper(), "discard": b""}[name]
                if back != want:
                    raise Unexpected("wrong_bytes", f"{name}: {len(data)} bytes of garbage, {len(back)} back")
                return "ok"
            if name == "pp":
                writer.write(self.rng.choice([
                    self.payload(self.rng.randint(1, 200)),
                    b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n",
                    b"PROXY " + self.payload(100) + b"\r\n",
                    b"PROXY UNKNOWN" + b"x" * 200 + b"\r\n",
                    b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + self.payload(40),
                    b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + self.payload(12),
                ]))
            else:  # tls-echo, tls-greeting
                writer.write(self.rng.choice([self.payload(self.rng.randint(1, 4000)),
                                              b"\x16\x03\x01\x00\x10" + self.payload(16),
                                              b"GET / HTTP/1.0\r\n\r\n"]))
            start = time.monotonic()
            try:
                data = await self.read_all(reader)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if data and not (name.startswith("tls-") and data[0] == 0x15):  # a TLS alert is allowed
                raise Unexpected("wrong_bytes", f"garbage on {name}: {data[:40]!r}")
            if time.monotonic() - start > (PP_TIMEOUT if name == "pp" else TLS_TIMEOUT) + 10:
                raise Unexpected("slow_refusal", f"garbage on {name} held {time.monotonic() - start:.1f} s")
            return "refused"
        finally:
            await self.close(writer)

    # A stalled PROXY header: a beginning, then nothing.

    async def pp_stall(self, name):
        start = time.monotonic()
        reader, writer = await self.connect("pp")
        try:
            writer.write(self.rng.choice([b"PROXY TCP4 192.0.2.7 ", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0"]))
            return await self.closed_without_bytes(reader, start, PP_TIMEOUT, "stalled PROXY header")
        finally:
            await self.close(writer)

    # Early reset: SO_LINGER 0, then close, at some point of the exchange.

    async def early_reset(self, name):
        tls = name.startswith("tls-") and self.rng.random() < 0.5
        reader, writer = await self.connect(name, tls=self.tls_context() if tls else None)
        try:
            if name in ("echo", "proxy", "discard", "exec", "proxy-v1") and self.rng.random() < 0.7:
                writer.write(self.payload(1 << 18))  # the server is still writing back, or reading
            elif name == "pp" and self.rng.random() < 0.5:
                writer.write(self.proxy_header()[:10])
            elif name == "greeting":
                writer.write(b"hi\n")
            await asyncio.sleep(self.rng.uniform(0, 0.2))
        finally:
            self.reset(writer)  # under TLS too: the transport's socket is the TCP one
        return "reset_sent"

    # Floods against the listeners with limits: "ok" or "refused", and never
    # more served at once than the limit allows.

    async def flood(self, name):
        generation = self.generation
        if name == "limited":
            sources = ["127.0.0.21"] * 4 + ["127.0.0.22"] * 4
        elif name == "rate":
            sources = ["127.0.0.31"] * 12
        else:  # exec-limited
            sources = ["127.0.0.41"] * 4
        conns = []
        outcome = []
        held = 0
        try:
            for source in sources:
                await self.take_slot()
                held += 1
                conns.append((source, await self.connect(name, source=source)))
            await asyncio.sleep(0.3)  # each is accepted and admitted or refused
            served = collections.Counter()
            for source, (reader, writer) in conns:
                try:
                    writer.write(b"hi\n")
                    if name == "exec-limited":
                        writer.write_eof()
                    await writer.drain()
                    data = await self.read_all(reader)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except OSError as e:
                    if e.errno != errno.ENOTCONN:  # shutdown() after the server's reset
                        raise
                    data = b""
                if data == b"":
                    outcome.append("refused")
                elif data == (DEFAULT_GREETING if name != "exec-limited" else b"hi\n"):
                    outcome.append("ok")
                    served[source] += 1
                else:
                    raise Unexpected("wrong_bytes", f"flood {name}: {data[:40]!r}")
            if generation == self.generation:  # no reload or upgrade meanwhile
                self.limit_bursts[name] += 1
                total = sum(served.values())
                if name == "limited" and (max(served.values(), default=0) > LIMITED_PER_SOURCE or total > LIMITED_MAX):
                    raise Unexpected("limit_exceeded", f"limited served {dict(served)} at once")
                if name == "exec-limited" and total > EXEC_LIMITED:
                    raise Unexpected("limit_exceeded", f"exec-limited ran {total} programs at once")
                if name == "rate" and total > BURST + max(RATES):
                    raise Unexpected("limit_exceeded", f"rate served {total} of a burst of {len(sources)}")
        finally:
            for _, (_, writer) in conns:
                await self.close(writer)
            for _ in range(held):
                self.give_slot()
        return outcome

    # --- workers ----------------------------------------------------------------

    async def take_slot(self):
        await self.slots.acquire()
        self.results.open += 1
        self.results.peak_open = max(self.results.peak_open, self.results.open)

    def give_slot(self):
        self.results.open -= 1
        self.slots.release()

    async def run_one(self, kind, name):
        expected = EXPECTED[kind]
        try:
            if kind == "flood":
                # One slot per connection, taken inside.
                labels = await asyncio.wait_for(self.flood(name), CLIENT_DEADLINE)
                for label in labels:
                    self.results.record(kind, name, label, label in expected)
                return
            await self.take_slot()
            try:
                label = await asyncio.wait_for(getattr(self, kind.replace("-", "_"))(name), CLIENT_DEADLINE)
            finally:
                self.give_slot()
            self.results.record(kind, name, label, label in expected)
        except Unexpected as e:
            self.results.record(kind, name, e.label, False, e.detail)
        except asyncio.TimeoutError:
            self.results.record(kind, name, "client_deadline", False, f"nothing happened for {CLIENT_DEADLINE} s")
        except asyncio.IncompleteReadError as e:
            self.results.record(kind, name, "short_read", False, f"{len(e.partial)} of {e.expected} bytes")
        except (ConnectionResetError, BrokenPipeError) as e:
            self.results.record(kind, name, "reset", False, str(e))
        except ssl.SSLError as e:
            self.results.record(kind, name, "tls_error", False, str(e))
        except OSError as e:
            self.results.record(kind, name, "os_error", False, str(e))

    async def worker(self, kind, names, until):
        while not self.stopping and time.monotonic() < until:
            name = self.rng.choice(names)
            if name == "extra":
                if not self.extra_open.is_set():
                    await asyncio.sleep(0.2)
                    continue
                self.extra_clients += 1
                try:
                    await self.run_one(kind, name)
                finally:
                    self.extra_clients -= 1
            else:
                await self.run_one(kind, name)
            await asyncio.sleep(self.rng.uniform(0, self.args.pause))

    # --- upstreams (for the proxy listeners) ---------------------------------------

    async def upstream_echo(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
        except (ConnectionResetError, BrokenPipeError, OSError):
            pass
        finally:
            writer.close()

    async def upstream_pp_echo(self, reader, writer):
        try:
            header = await reader.readuntil(b"\r\n")
            m = re.fullmatch(rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 (\d+) (\d+)\r\n", header)
            if not m or int(m.group(2)) != self.ports.get("proxy-v1"):
                writer.write(b"BAD PROXY HEADER " + header)
                writer.close()
                return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionResetError):
            writer.close()
            return
        await self.upstream_echo(reader, writer)

    # --- run ----------------------------------------------------------------------

    def prepare(self):
        a = self.args
        self.work = tempfile.mkdtemp(prefix="portico-soak-")
        os.chmod(self.work, 0o755)  # porticod reads its config and key as "nobody" on reloads
        os.mkdir(f"{self.work}/run", 0o755)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(f"{self.work}/run", nobody.pw_uid, nobody.pw_gid)
        self.pid_path = f"{self.work}/run/porticod.pid"
        self.config_path = f"{self.work}/portico.toml"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", f"{self.work}/key.pem", "-out", f"{self.work}/cert.pem",
                        "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(f"{self.work}/key.pem", 0o644)  # a throwaway key that "nobody" must read on reloads
        self.known_names = {"greeting", "banner", "echo", "discard", "daytime", "extra", "time", "chargen", "exec",
                            "exec-limited", "proxy", "proxy-v1", "pp", "tls-echo", "tls-greeting", "limited",
                            "rate"}

    async def warm_up(self):
        """One well-behaved client of each listener, so the baseline holds what first use allocates."""
        for name in sorted(self.ports):
            if name not in ("limited", "rate", "exec-limited", "extra"):
                await self.run_one("good", name)
        for _ in range(2):
            await self.run_one("good", "rate")
            await self.run_one("good", "limited")

    async def settle(self, baseline_fds):
        """Waits until porticod holds no connection and no child: its descriptors back to the baseline."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.read_log()
            if fd_count(self.pid) == baseline_fds and not children(self.pid):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # and it stays so

    async def main(self, processes):
        a = self.args
        self.processes = processes
        self.slots = asyncio.Semaphore(a.clients)
        echo = await asyncio.start_server(self.upstream_echo, "127.0.0.1", 0)
        pp_echo = await asyncio.start_server(self.upstream_pp_echo, "127.0.0.1", 0)
        self.upstream_ports = {"echo": echo.sockets[0].getsockname()[1], "pp-echo": pp_echo.sockets[0].getsockname()[1]}
        await self.start_daemon(processes)
        log(f"porticod {self.pid} serving {len(self.ports)} listeners: "
            + ", ".join(f"{n}={p}" for n, p in sorted(self.ports.items())))

        await self.warm_up()
        await asyncio.sleep(1)
        self.read_log()
        base_fds, base_rss = fd_count(self.pid), rss_kib(self.pid)
        base_kinds = fd_kinds(self.pid)
        log(f"baseline: {base_fds} descriptors {base_kinds}, RSS {base_rss} KiB")

        duration = a.minutes * 60
        until = time.monotonic() + duration
        all_names = sorted(self.known_names - {"limited", "rate", "exec-limited"})
        plan = [
            ("good", all_names, 3 * len(all_names)),
            ("half-close", ["greeting", "echo", "proxy", "exec"], 4),
            ("silent", ["greeting", "echo", "discard", "proxy", "pp", "tls-echo", "tls-greeting", "exec",
                        "banner", "daytime", "time", "chargen"], 8),
            ("slowloris", ["greeting", "echo", "discard", "pp", "tls-echo"], 6),
            ("garbage", ["greeting", "echo", "exec", "discard", "pp", "tls-echo", "tls-greeting"], 4),
            ("pp-stall", ["pp"], 2),
            ("early-reset", ["greeting", "echo", "discard", "daytime", "chargen", "exec", "proxy", "proxy-v1",
                             "pp", "tls-echo", "tls-greeting", "time", "banner"], 4),
            ("flood", ["limited", "rate", "exec-limited"], 2),
        ]
        workers = []
        for kind, names, count in plan:
            for _ in range(count):
                workers.append(asyncio.create_task(self.worker(kind, names, until)))
        log(f"{len(workers)} client loops for {duration:.0f} s, at most {a.clients} connections at once; "
            f"a reload every {a.reload_every:.0f} s, {a.upgrades} binary upgrade(s)")
        monitor = asyncio.create_task(self.monitor())
        controllers = [asyncio.create_task(self.reloader(until)), asyncio.create_task(self.upgrader(until, a.upgrades))]
        progress = asyncio.create_task(self.progress(until))

        await asyncio.gather(*controllers)
        await asyncio.gather(*workers)
        await asyncio.gather(*self.old_exits)
        self.stopping = True
        progress.cancel()
        await monitor
        log(f"clients done: {sum(sum(c.values()) for c in self.results.outcomes.values())} outcomes")

        # Back to config A, whose listeners the baseline counted.
        if self.variant != 0:
            await self.reload(0)
        await self.settle(base_fds)
        kids = self.check_children(self.pid)
        end_fds, end_rss = fd_count(self.pid), rss_kib(self.pid)
        self.end = {"fds": end_fds, "fd_kinds": fd_kinds(self.pid), "rss": end_rss, "children": kids}
        self.base = {"fds": base_fds, "fd_kinds": base_kinds, "rss": base_rss}
        if end_fds != base_fds:
            self.results.fail(f"descriptors: {end_fds} at the end {self.end['fd_kinds']}, "
                              f"{base_fds} at the baseline {base_kinds}")
        if end_rss is None or end_rss > base_rss + RSS_SLACK_KIB:
            self.results.fail(f"RSS: {end_rss} KiB at the end, {base_rss} KiB at the baseline "
                              f"(tolerance +{RSS_SLACK_KIB} KiB)")
        if kids:
            self.results.fail(f"children of porticod left after every client ended: {kids}")

        # SIGTERM: exit 0 within shutdown_timeout.
        pid = self.pid
        os.kill(pid, signal.SIGTERM)
        t0 = time.monotonic()
        status = await wait_exit(pid, SHUTDOWN_TIMEOUT + 5)
        self.stop = (status, time.monotonic() - t0)
        self.read_log()
        if self.log_partial:
            self.check_line(self.log_partial)
            self.log_partial = b""
        if status is None:
            self.results.fail(f"SIGTERM: porticod {pid} still runs after {SHUTDOWN_TIMEOUT + 5} s")
        elif status != 0:
            self.results.fail(f"SIGTERM: porticod exited with status {status}")
        elif self.stop[1] > SHUTDOWN_TIMEOUT:
            self.results.fail(f"SIGTERM: exit took {self.stop[1]:.1f} s, more than shutdown_timeout")
        echo.close()
        pp_echo.close()

    async def progress(self, until):
        while True:
            await asyncio.sleep(10)
            left = until - time.monotonic()
            if left <= 0:
                continue
            n = sum(sum(c.values()) for c in self.results.outcomes.values())
            s = self.samples[-1] if self.samples else (0, self.pid, None, None)
            log(f"{left:4.0f} s left: {n} outcomes, {self.results.unexpected_count} unexpected, "
                f"{self.results.open} open, {self.reloads_complete} reloads, {len(self.upgrades)} upgrades, "
                f"porticod {s[1]}: {s[2]} fds, {s[3]} KiB")

    # --- summary ------------------------------------------------------------------

    def summarize(self):
        r = self.results
        if self.reloads_complete != self.reloads_sent:
            r.fail(f"reloads: {self.reloads_sent} SIGHUP sent, {self.reloads_complete} completed")
        if r.unexpected_count:
            r.fail(f"{r.unexpected_count} unexpected client outcome(s)")
        if self.log_bad_count:
            r.fail(f"{self.log_bad_count} malformed or unknown log line(s)")
        for name in ("limited", "rate", "exec-limited"):
            got = r.outcomes.get(("flood", name), {})
            if not got.get("refused") or not got.get("ok"):
                r.fail(f"flood on {name}: the limit never bit or never let one through ({dict(got)})")

        print()
        print("## Client outcomes (expected ones unmarked, unexpected ones with !)")
        print()
        print("| kind | listener | connections | outcomes |")
        print("| --- | --- | ---: | --- |")
        total = 0
        for (kind, listener), counts in sorted(r.outcomes.items()):
            n = sum(counts.values())
            total += n
            parts = ", ".join(f"{label}{'' if label in EXPECTED[kind] else ' !'} {c}"
                              for label, c in counts.most_common())
            print(f"| {kind} | {listener} | {n} | {parts} |")
        print(f"| all | | {total} | {r.unexpected_count} unexpected |")
        by_kind = collections.Counter()
        for (kind, _), counts in r.outcomes.items():
            for label, c in counts.items():
                if label not in EXPECTED[kind]:
                    by_kind[label] += c
        if by_kind:
            print()
            print("Unexpected outcomes by kind: " + ", ".join(f"{k} {v}" for k, v in by_kind.most_common()))
            for when, kind, listener, label, detail in r.unexpected:
                print(f"  {when} {kind} {listener}: {label}: {detail}")

        print()
        print("## Daemon")
        print()
        print("| check | value |")
        print("| --- | --- |")
        b, e = getattr(self, "base", {}), getattr(self, "end", {})
        print(f"| descriptors, baseline → end | {b.get('fds')} → {e.get('fds')} (must be equal) |")
        print(f"| RSS KiB, baseline → end | {b.get('rss')} → {e.get('rss')} (tolerance +{RSS_SLACK_KIB}) |")
        fds = [s[2] for s in self.samples if s[2] is not None]
        rss = [s[3] for s in self.samples if s[3] is not None]
        if fds:
            print(f"| descriptors, peak during the run | {max(fds)} |")
            print(f"| RSS KiB, peak during the run | {max(rss)} |")
        print(f"| connections open at once, peak (soak side) | {r.peak_open} of at most {self.args.clients} |")
        print(f"| exec children at once, peak | {self.max_children} |")
        print(f"| reloads | {self.reloads_sent} sent, {self.reloads_complete} complete, {self.reloads_failed} failed |")
        ups = ", ".join(f"{o} → {n}, old exited {s} after {t:.1f} s" for o, n, t, s in self.upgrades)
        print(f"| binary upgrades | {len(self.upgrades)}{': ' + ups if ups else ''}"
              f"{' (' + self.upgrade_skipped + ')' if self.upgrade_skipped else ''} |")
        stop = getattr(self, "stop", (None, 0))
        print(f"| SIGTERM | exit status {stop[0]} after {stop[1]:.1f} s (limit {SHUTDOWN_TIMEOUT} s) |")
        print(f"| log lines | {self.log_lines}, {self.log_bad_count} malformed; "
              + ", ".join(f"{lv} {n}" for lv, n in self.levels.most_common()) + " |")
        for line in self.log_bad:
            print(f"  bad log line: {line}")
        print()
        print("Log messages by family: " + ", ".join(f"{m} {n}" for m, n in self.messages.most_common(14)))
        print()
        if r.failures:
            print("soak: FAILED:")
            for reason in r.failures:
                print("  - " + reason)
        else:
            print("soak: passed")
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"minutes": self.args.minutes, "seed": self.args.seed,
                           "outcomes": {f"{k} {l}": dict(c) for (k, l), c in r.outcomes.items()},
                           "unexpected": r.unexpected_count, "base": b, "end": e,
                           "peak_fds": max(fds, default=None), "peak_rss": max(rss, default=None),
                           "peak_open": r.peak_open, "reloads": self.reloads_complete,
                           "upgrades": self.upgrades, "upgrade_skipped": self.upgrade_skipped,
                           "stop": stop, "log_lines": self.log_lines, "levels": dict(self.levels),
                           "messages": dict(self.messages), "failures": r.failures}, f, indent=1, default=str)
        return not r.failures


# What each kind of client may see; anything else is a failure.
EXPECTED = {
    "good": {"ok"},
    "half-close": {"ok"},
    "silent": {"ok", "timed_out"},  # "ok": a listener whose server speaks first served it
    "slowloris": {"ok", "timed_out"},
    "garbage": {"ok", "refused"},
    "pp-stall": {"timed_out"},
    "early-reset": {"reset_sent"},
    "flood": {"ok", "refused"},
}


def message_family(message):
    """A log message without its variable parts, to count them by kind."""
    message = TAGGED.sub("", message)
    message = re.sub(r"\d+(\.\d+)?", "N", message)
    return message[:48]


def ensure_porticod(path):
    if os.access(path, os.X_OK):
        return
    if path != os.path.join(ROOT, "build", "porticod"):
        raise SystemExit(f"soak: {path} is not an executable")
    log("build/porticod missing: building it")
    subprocess.run(["cmake", "-S", ROOT, "-B", os.path.join(ROOT, "build"), "-DPORTICO_WERROR=ON"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", os.path.join(ROOT, "build"), "--target", "porticod",
                    f"-j{os.cpu_count() or 2}"], check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.0, help="how long the clients run (default 1)")
    p.add_argument("--porticod", default=os.path.join(ROOT, "build", "porticod"))
    p.add_argument("--clients", type=int, default=160, help=f"connections open at once, at most (cap {MAX_CLIENTS})")
    p.add_argument("--reload-every", type=float, default=3.0, help="seconds between reloads (default 3)")
    p.add_argument("--upgrades", type=int, help="binary upgrades (SIGUSR2) in the run (default 1, +1 per 5 minutes)")
    p.add_argument("--pause", type=float, default=0.05, help="a client loop's longest pause between clients (s)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--keep", action="store_true", help="keep the work directory (config, log) at the end")
    args = p.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        p.error("--minutes: from 0 to 1440")
    if not 1 <= args.clients <= MAX_CLIENTS:
        p.error(f"--clients: from 1 to {MAX_CLIENTS}")
    if args.upgrades is None:
        args.upgrades = 1 + int(args.minutes // 5)
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    args.porticod = os.path.abspath(args.porticod)
    ensure_porticod(args.porticod)
    log(f"seed {args.seed} (--seed to repeat the same choices)")

    # Each upgraded porticod is started by the previous one; once that one
    # exits, it becomes our child, so that we can see how it ends.
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    processes = Processes()
    soak = Soak(args)
    ok = False
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupted)
    try:
        soak.prepare()
        asyncio.run(soak.main(processes))
        ok = soak.summarize()
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        processes.kill_all()
        work = getattr(soak, "work", None)
        if work:
            if args.keep or not ok:
                log(f"config and log kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
