"""Starting and stopping servers so that none outlives bench/compare."""

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

children = []  # every process we start, killed on any exit

_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    # PR_SET_PDEATHSIG: even if we are SIGKILLed, the kernel kills the server.
    _libc.prctl(1, signal.SIGKILL)


def become_subreaper():
    # PR_SET_CHILD_SUBREAPER: a forking server's children (socat's relays,
    # the programs xinetd and tcpserver spawn) that outlive it become ours,
    # not init's, so stop() can reap them: in a container whose PID 1 does not
    # reap, they would otherwise stay behind as zombies.
    _libc.prctl(36, 1)


def spawn(cmd, log, env=None):
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, preexec_fn=die_with_parent)
    children.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    clear_leftovers(proc.pid)
    if proc in children:
        children.remove(proc)


def leftovers(pgid):
    """(pid, state, ppid) of what a stopped server left: the rest of its
    process group, and orphans reparented to us (we are a subreaper) that we
    did not start, such as children a server put in groups of their own."""
    me, ours = os.getpid(), {p.pid for p in children}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid, state, ppid, pgrp = int(entry), fields[0], int(fields[1]), int(fields[2])
        if pgrp == pgid or (ppid == me and pid not in ours):
            found.append((pid, state, ppid))
    return found


def descendants(pid):
    """The processes pid started that still run (children, theirs, ...), in
    the order they were found: a master's workers and helpers, whose CPU
    time and memory are the server's as much as the master's own."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in sorted(children.get(todo.pop(0), [])):
            found.append(child)
            todo.append(child)
    return found


def clear_leftovers(pgid, seconds=3.0):
    """Ends and reaps what a stopped server left behind: SIGTERM (the rest of
    its group already has it), SIGKILL after a second, waitpid for our own."""
    start = time.monotonic()
    signalled = set()
    while True:
        live = False
        for pid, state, ppid in leftovers(pgid):
            if state != "Z":
                live = True
                sig = signal.SIGKILL if time.monotonic() - start > 1.0 else signal.SIGTERM
                if (pid, sig) not in signalled:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                    signalled.add((pid, sig))
            elif ppid == os.getpid():
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if not live or time.monotonic() - start > seconds:
            return
        time.sleep(0.02)


def stop_all():
    for proc in list(children):
        try:
            stop(proc)
        except Exception:  # we are on the way out; keep killing the rest
            pass


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, seconds=15.0):
    """True once port accepts; False if proc died first or time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def tail(path, lines=5):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def run_quiet(cmd, timeout=30, env=None):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        return r.returncode, (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)
