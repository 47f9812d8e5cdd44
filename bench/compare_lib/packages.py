"""Bringing in missing peers from Debian's archive."""

import os
import shutil
import subprocess

from .common import say
from .processes import run_quiet


def apt_install(packages, log):
    """Installs Debian packages; True on success."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + packages
    with open(log, "ab") as out:
        for attempt in range(2):
            try:
                if subprocess.run(cmd, stdout=out, stderr=out, env=env, timeout=900).returncode == 0:
                    return True
                if attempt == 0:  # stale package lists are the usual cause
                    subprocess.run(["apt-get", "update"], stdout=out, stderr=out, env=env, timeout=600)
            except subprocess.TimeoutExpired:
                return False
    return False


def nginx_stream_module():
    """The load_module line nginx needs for stream, '' if built in, None if absent."""
    if not shutil.which("nginx"):
        return None
    _, info = run_quiet(["nginx", "-V"])
    if "--with-stream=dynamic" not in info and "--with-stream" in info:
        return ""
    for path in ("/usr/lib/nginx/modules/ngx_stream_module.so", "/usr/share/nginx/modules/ngx_stream_module.so"):
        if os.path.exists(path):
            return f"load_module {path};"
    return None


def have_uvloop():
    return run_quiet(["/usr/bin/python3", "-c", "import uvloop"])[0] == 0


# What each peer needs, how to tell it is there, and which packages bring it.
REQUIREMENTS = {
    "taskset": (lambda: shutil.which("taskset"), [["util-linux"]]),
    "asyncio": (lambda: os.path.exists("/usr/bin/python3"), [["python3"]]),
    "uvloop": (have_uvloop, [["python3-uvloop"]]),
    "go": (lambda: shutil.which("go"), [["golang-go"]]),
    "node": (lambda: shutil.which("node"), [["nodejs"]]),
    "nginx": (lambda: nginx_stream_module() is not None,
              [["nginx-light", "libnginx-mod-stream"], ["nginx", "libnginx-mod-stream"]]),
    "c-epoll": (lambda: shutil.which("gcc"), [["gcc"]]),
    # The proxy and exec workloads build their echo upstream and hello with gcc.
    "gcc": (lambda: shutil.which("gcc"), [["gcc"]]),
    "direct": (lambda: shutil.which("gcc"), [["gcc"]]),
    # haproxy's and xinetd's packages ask invoke-rc.d to start their system
    # services; a container's policy-rc.d refuses that and the install still
    # succeeds. Either way bench/compare runs private instances on free ports,
    # with configs in its temporary directory, and never touches those.
    "haproxy": (lambda: shutil.which("haproxy"), [["haproxy"]]),
    "socat": (lambda: shutil.which("socat"), [["socat"]]),
    "xinetd": (lambda: shutil.which("xinetd"), [["xinetd"]]),
    "tcpserver": (lambda: shutil.which("tcpserver"), [["ucspi-tcp"]]),
    # The TLS terminators; the certificates are made with openssl's command line.
    "stunnel": (lambda: shutil.which("stunnel4"), [["stunnel4"]]),
    "hitch": (lambda: shutil.which("hitch"), [["hitch"]]),
    "openssl": (lambda: shutil.which("openssl"), [["openssl"]]),
    "gnuplot": (lambda: shutil.which("gnuplot"), [["gnuplot-nox"]]),
}


def ensure(names, install, log):
    """Returns {name: reason} for every requirement that cannot be had."""
    missing = {}
    for name in names:
        present, choices = REQUIREMENTS[name]
        if present():
            continue
        if install:
            for packages in choices:
                say(f"installing {' '.join(packages)} from Debian for {name} ...")
                if apt_install(packages, log) and present():
                    break
        if not present():
            how = " or ".join(" + ".join(p) for p in choices)
            why = "not installed" if not install else "apt-get install failed"
            missing[name] = f"{how}: {why} (see {log})" if install else f"{how}: {why} (--no-install)"
    return missing
