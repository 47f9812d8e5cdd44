#!/bin/bash
# tests/packaging/run.sh: build, lint, install, exercise and purge the Debian
# packages of portico. Runs as root on a Debian 12 machine or container
# (systemd need not be running), changes the system (installs and purges the
# packages, creates the system user portico) and cleans up what it starts.
#
#   tests/packaging/run.sh            # builds with packaging/build-deb
#   tests/packaging/run.sh DEBDIR     # tests the .deb files already in DEBDIR
#
# Prints PASS/FAIL per step, the output of failed steps, and a last line
# "N passed, N failed". Exit status 0 only when every step passed.
# Environment: PORTICO_TEST_KEEP=1 keeps the work directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
mandir=$top/man

if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh: must run as root (it installs and purges packages)" >&2
    exit 2
fi

# The tools this test runs (a fresh machine has none of them).
"$top/tools/deps" dpkg-dev debhelper lintian mandoc man-db systemd python3 util-linux procps openssl logrotate

work=$(mktemp -d "${TMPDIR:-/tmp}/portico-pkgtest.XXXXXX")
# The service user reads the configurations the test writes here.
chmod 0755 "$work"
chmod 755 "$work"
# kill_server: kill the porticod that the serve step started, if it still runs
# (its pid is in $work/server.pid; the step runs in a subshell).
kill_server() {
    local pid
    # /run/portico, made by hand as systemd's RuntimeDirectory= would
    if [[ -f $work/runtime-dir-made ]]; then
        rm -rf /run/portico
        rm -f "$work/runtime-dir-made"
    fi
    pid=$(cat "$work/server.pid" 2>/dev/null) || return 0
    if [[ -n $pid ]] && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) = /usr/sbin/porticod ]]; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$work/server.pid"
}
cleanup() {
    kill_server
    if [[ ${PORTICO_TEST_KEEP:-0} = 1 ]]; then
        echo "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
skipped=0
failures=()
# step NAME FUNCTION [ARGS...]: run FUNCTION with `set -e` in a subshell,
# its output to a log, and count it. The output of a failed step is shown.
step() {
    local name=$1
    shift
    local log
    log=$work/step-$((passed + failed + skipped + 1)).log
    local rc=0
    set +e
    ( set -e; "$@" ) >"$log" 2>&1
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "PASS: $name"
    elif [[ $rc -eq 77 ]]; then
        skipped=$((skipped + 1))
        echo "SKIP: $name ($(tail -n 1 "$log"))"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL: $name"
        sed 's/^/    | /' "$log" | tail -n 40
    fi
    return 0
}
finish() {
    [[ $skipped -eq 0 ]] || echo "($skipped skipped)"
    [[ $failed -eq 0 ]] || printf 'failed: %s\n' "${failures[@]}"
    echo "$passed passed, $failed failed"
    exit $((failed > 0 ? 1 : 0))
}
fail() { echo "$*" >&2; return 1; }

debdir=$work/debs
mkdir -p "$debdir"
installed_list=$work/installed-files

# --- steps ----------------------------------------------------------------

build_debs() {
    timeout 3600 "$top/packaging/build-deb" "$debdir"
    ls -l "$debdir"
    compgen -G "$debdir/portico_*.deb" >/dev/null || fail "no portico_*.deb built"
}

use_prebuilt() {
    cp -v "$1"/*.deb "$debdir/"
    compgen -G "$debdir/portico_*.deb" >/dev/null || fail "no portico_*.deb in $1"
}

lintian_clean() {
    local out=$work/lintian.txt
    # lintian's own exit status also counts tags below warning on some
    # versions; judge by the tags. "running with root privileges" is a note.
    timeout 900 lintian --info --display-info --tag-display-limit 0 "$debdir"/*.deb >"$out" 2>&1 || true
    # the tags first (the explanations after them are long)
    grep -E '^[A-Z]: ' "$out" || echo "(no tags)"
    echo "--- full output"
    cat "$out"
    if grep -Eq '^[EW]: ' "$out"; then
        echo "--- errors and warnings"
        grep -E '^[EW]: ' "$out"
        fail "lintian reported errors or warnings"
    fi
    if grep -Eq '^(internal error|.*Traceback|Can.t locate)' "$out"; then
        fail "lintian did not run properly"
    fi
}

purge_if_installed() {
    local pkgs=()
    for p in portico libportico-dev; do
        local st
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        if [[ -n $st && $st != not-installed ]]; then
            pkgs+=("$p")
        fi
    done
    if [[ ${#pkgs[@]} -gt 0 ]]; then
        timeout 600 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 purge -y "${pkgs[@]}"
    fi
}

install_pkgs() {
    purge_if_installed
    local debs=("$debdir"/portico_*.deb)
    compgen -G "$debdir/libportico-dev_*.deb" >/dev/null && debs+=("$debdir"/libportico-dev_*.deb)
    timeout 900 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "${debs[@]}"
    dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' portico
    [[ $(dpkg-query -W -f='${db:Status-Status}' portico) = installed ]] || fail "portico is not installed"
    [[ -x /usr/sbin/porticod ]] || fail "/usr/sbin/porticod is missing"
    [[ -x /usr/bin/portico-bench ]] || fail "/usr/bin/portico-bench is missing"
    /usr/bin/portico-bench --version || fail "portico-bench --version failed"
    getent passwd portico || fail "no user portico"
    getent group portico || fail "no group portico"
    # the access log's rotation, which logrotate itself must accept
    [[ -f /etc/logrotate.d/portico ]] || fail "/etc/logrotate.d/portico is missing"
    logrotate --debug /etc/logrotate.d/portico 2>&1 || fail "logrotate rejects /etc/logrotate.d/portico"
    # files of the package, to check the purge against
    dpkg -L portico >"$installed_list"
    if dpkg-query -W libportico-dev >/dev/null 2>&1; then
        dpkg -L libportico-dev >>"$installed_list"
    fi
    # Under a running systemd the postinst started the service: stop it, the
    # serve step runs its own porticod on the same port.
    if [[ -d /run/systemd/system ]]; then
        timeout 60 systemctl stop portico.service || true
    fi
}

conffile_registered() {
    local conffiles
    conffiles=$(dpkg-query -W -f='${Conffiles}\n' portico)
    echo "$conffiles"
    grep -Eq '^ /etc/portico/portico\.toml [0-9a-f]{32}' <<<"$conffiles" ||
        fail "/etc/portico/portico.toml is not a registered conffile"
    cmp /etc/portico/portico.toml "$top/packaging/portico.toml" ||
        fail "/etc/portico/portico.toml differs from packaging/portico.toml"
}

# porticod --check as the unit runs porticod: as the user portico.
check_as_service() {
    timeout 30 setpriv --reuid=portico --regid=portico --init-groups /usr/sbin/porticod --check -c "$1"
}

config_checks() {
    local rc=0
    check_as_service /etc/portico/portico.toml || rc=$?
    [[ $rc -eq 0 ]] || fail "porticod --check as portico exited $rc"
    # As root, the file is checked for a porticod started by root, which it
    # does not let serve as root: the check says so, with the position.
    local out
    rc=0
    out=$(timeout 30 /usr/sbin/porticod --check -c /etc/portico/portico.toml 2>&1) || rc=$?
    echo "$out"
    [[ $rc -eq 78 ]] || fail "porticod --check as root exited $rc, not 78"
    grep -q '^/etc/portico/portico.toml:[0-9]*:[0-9]*: refusing to serve as root' <<<"$out" ||
        fail "porticod --check as root does not say why it refuses"
    timeout 30 /usr/sbin/porticod --version
}

# The certificates the TLS examples name, as an administrator would put them
# in /etc/portico/tls (root:portico 0640); removed again by the caller.
example_certificates() {
    local name
    for name in example other; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=$name.test" -keyout "/etc/portico/tls/$name.key" -out "/etc/portico/tls/$name.pem" 2>/dev/null
        chown root:portico "/etc/portico/tls/$name.key" "/etc/portico/tls/$name.pem"
        chmod 0640 "/etc/portico/tls/$name.key" "/etc/portico/tls/$name.pem"
    done
}
remove_example_certificates() {
    rm -f /etc/portico/tls/example.key /etc/portico/tls/example.pem /etc/portico/tls/other.key /etc/portico/tls/other.pem
}

tls_directory() {
    # Keys readable by the service's group, nobody else.
    [[ $(stat -c '%U:%G %a' /etc/portico/tls) = "root:portico 750" ]] ||
        fail "/etc/portico/tls is $(stat -c '%U:%G %a' /etc/portico/tls), not root:portico 750"
    # And the service user can read what is put there, as a reload needs.
    example_certificates
    local rc=0
    setpriv --reuid=portico --regid=portico --init-groups cat /etc/portico/tls/example.key >/dev/null || rc=$?
    remove_example_certificates
    [[ $rc -eq 0 ]] || fail "the user portico cannot read a key in /etc/portico/tls"
}

commented_examples_valid() {
    # The installed config shows every handler type commented out ("#key"
    # lines; "# text" and "## text" are prose). Uncommented, all of it must
    # be a valid configuration.
    sed -E 's/^#([^# !])/\1/' /etc/portico/portico.toml >"$work/uncommented.toml"
    grep -c '^\[\[listener\]\]' "$work/uncommented.toml"
    example_certificates
    local rc=0
    check_as_service "$work/uncommented.toml" || rc=$?
    remove_example_certificates
    [[ $rc -eq 0 ]] || { cat "$work/uncommented.toml"; fail "uncommented examples do not pass --check"; }
}

# Send a line to 127.0.0.1:PORT and print the answer, up to 64 KiB or EOF.
ask() {
    timeout 15 python3 - "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"hello portico\n")
data = b""
while len(data) < 65536:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)
EOF
}

port_open() {
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", 8888), timeout=1).close()' 2>/dev/null
}

# The unit's RuntimeDirectory=portico, by hand: the control socket of the
# packaged configuration goes there. Removed again by kill_server.
make_runtime_dir() {
    if [[ ! -d /run/portico ]]; then
        install -d -o portico -g portico -m 0755 /run/portico
        touch "$work/runtime-dir-made"
    fi
}

# Start the installed porticod as the unit does (user portico), on
# /etc/portico/portico.toml; its pid goes to $work/server.pid.
start_server() {
    local log=$1
    make_runtime_dir
    setpriv --reuid=portico --regid=portico --init-groups --inh-caps=-all \
        /usr/sbin/porticod -c /etc/portico/portico.toml >"$log" 2>&1 &
    local server_pid=$!
    echo "$server_pid" >"$work/server.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        port_open && [[ -S /run/portico/control.sock ]] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$log"; fail "porticod exited early"; }
        sleep 0.1
    done
    port_open || { cat "$log"; fail "porticod does not listen on 127.0.0.1:8888 after 10s"; }
}

serve_greeting() {
    if port_open; then
        fail "something already listens on 127.0.0.1:8888; stop it first"
    fi
    local log=$work/porticod.log
    trap kill_server EXIT
    start_server "$log"
    local server_pid
    server_pid=$(cat "$work/server.pid")
    local got
    got=$(ask 8888 | od -An -c)
    local want
    want=$(printf 'Hello from server!\n' | od -An -c)
    echo "answer: $got"
    # the process runs as portico
    ps -o user=,pid=,args= -p "$server_pid"
    [[ $(ps -o user= -p "$server_pid" | tr -d ' ') = portico ]] || fail "porticod does not run as portico"
    kill -TERM "$server_pid"
    local rc=0
    timeout 30 tail --pid="$server_pid" -f /dev/null || fail "porticod did not stop within 30s of SIGTERM"
    wait "$server_pid" || rc=$?
    rm -f "$work/server.pid"
    echo "--- porticod log"
    cat "$log"
    echo "---"
    [[ $got = "$want" ]] || fail "expected 'Hello from server!\\n', got: $got"
    grep -q 'serving hello on 127.0.0.1:8888 (greeting)' "$log" ||
        fail "no 'serving hello on 127.0.0.1:8888 (greeting)' log line"
    [[ $rc -eq 0 ]] || fail "porticod exited $rc after SIGTERM, expected 0"
    [[ ! -e /run/portico/control.sock ]] || fail "porticod left its control socket behind"
    kill_server
}

# What `systemctl reload portico` runs: the unit's ExecReload=, which must
# be porticoctl (a SIGHUP could not say that the file is broken).
exec_reload() {
    local unit
    unit=$(unit_path) || fail "portico.service is not installed"
    sed -n 's/^ExecReload=//p' "$unit"
}

reload_with_porticoctl() {
    local command
    command=$(exec_reload)
    echo "ExecReload=$command"
    [[ $command == /usr/sbin/porticoctl\ * && $command == *\ reload ]] ||
        fail "ExecReload= does not run porticoctl reload: $command"
    [[ -x /usr/sbin/porticoctl ]] || fail "/usr/sbin/porticoctl is missing"
    [[ -f /usr/share/bash-completion/completions/porticoctl ]] || fail "no bash completion for porticoctl"
    bash -n /usr/share/bash-completion/completions/porticoctl || fail "the bash completion does not parse"
    if port_open; then
        fail "something already listens on 127.0.0.1:8888; stop it first"
    fi
    local log=$work/porticod-reload.log
    trap kill_server EXIT
    cp -p /etc/portico/portico.toml "$work/portico.toml.orig"
    start_server "$log"
    ls -l /run/portico
    [[ $(stat -c '%a %U %G' /run/portico/control.sock) = "660 portico portico" ]] ||
        fail "control socket is not 0660 portico:portico"

    local rc=0 out
    out=$(timeout 30 $command 2>&1) || rc=$?
    echo "$out"
    [[ $rc -eq 0 ]] || fail "porticoctl reload of the packaged config exited $rc"
    grep -q '^reloaded /etc/portico/portico.toml: 1 listener(s) kept, 0 added, 0 removed$' <<<"$out" ||
        fail "no 'reloaded ...' line"

    # a member of group portico may ask; another user may not
    timeout 30 setpriv --reuid=portico --regid=portico --init-groups /usr/sbin/porticoctl status ||
        fail "porticoctl status as portico failed"
    rc=0
    timeout 30 setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/porticoctl status || rc=$?
    [[ $rc -eq 77 ]] || fail "porticoctl status as nobody exited $rc, expected 77"

    # a broken file: exit 78 with FILE:LINE:COL, and the old config serves on
    printf '\n[[listener]]\nname = "broken"\naddress = "127.0.0.1:8889"\nbogus = 1\n' >>/etc/portico/portico.toml
    rc=0
    out=$(timeout 30 $command 2>&1) || rc=$?
    cp -p "$work/portico.toml.orig" /etc/portico/portico.toml
    echo "$out"
    [[ $rc -eq 78 ]] || fail "porticoctl reload of a broken file exited $rc, expected 78"
    grep -Eq '^/etc/portico/portico\.toml:[0-9]+:1: unknown key "bogus" in listener #2' <<<"$out" ||
        fail "the error does not name FILE:LINE:COL"
    grep -q 'still serving the previous configuration' <<<"$out" || fail "no 'still serving' message"
    local got
    got=$(ask 8888)
    [[ $got = "Hello from server!" ]] || fail "the old config no longer serves after the failed reload: $got"
    timeout 30 /usr/sbin/porticoctl probe || fail "porticoctl probe failed"

    kill -TERM "$(cat "$work/server.pid")"
    timeout 30 tail --pid="$(cat "$work/server.pid")" -f /dev/null || fail "porticod did not stop"
    echo "--- porticod log"
    cat "$log"
    kill_server
}

# dpkg -i of a newer version while clients keep connecting: the postinst
# hands the running porticod over to the new binary (SIGUSR2), and not one
# client is refused or reset. The newer version is this one repacked with a
# higher version number: dpkg replaces every file and runs the upgrade path.
upgrade_under_load() {
    if port_open; then
        fail "something already listens on 127.0.0.1:8888; stop it first"
    fi
    local log=$work/upgrade.log
    make_runtime_dir
    setpriv --reuid=portico --regid=portico --init-groups --inh-caps=-all \
        /usr/sbin/porticod -c /etc/portico/portico.toml >"$log" 2>&1 &
    local old_pid=$!
    echo "$old_pid" >"$work/server.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        port_open && break
        sleep 0.1
    done
    port_open || { cat "$log"; fail "porticod does not listen on 127.0.0.1:8888"; }

    local newer=$work/newer
    rm -rf "$newer" && mkdir -p "$newer"
    dpkg-deb -R "$debdir"/portico_*.deb "$newer/root"
    local version
    version=$(sed -n 's/^Version: //p' "$newer/root/DEBIAN/control")
    sed -i "s/^Version: .*/Version: $version+upgradetest/" "$newer/root/DEBIAN/control"
    dpkg-deb -b "$newer/root" "$newer/portico_upgrade.deb" >/dev/null

    # Clients for 6 seconds, each checking the exact greeting.
    python3 - >"$work/clients.out" 2>&1 <<'PY' &
import socket, threading, time
end = time.monotonic() + 6
lock = threading.Lock()
counts = {"ok": 0, "errors": 0}
errors = []
def client():
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", 8888), timeout=10)
            s.sendall(b"hello\n")
            data = b""
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
            s.close()
            ok = data == b"Hello from server!\n"
        except OSError as e:
            ok = False
            data = repr(e).encode()
        with lock:
            counts["ok" if ok else "errors"] += 1
            if not ok and len(errors) < 5:
                errors.append(data)
threads = [threading.Thread(target=client) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(counts["ok"], counts["errors"], errors)
PY
    local clients=$!
    sleep 1
    timeout 300 dpkg -i "$newer/portico_upgrade.deb"
    wait "$clients"
    cat "$work/clients.out"
    local ok errors
    read -r ok errors _ <"$work/clients.out"
    grep -q "upgrade: this process (pid [0-9]*) serves every listener now" "$log" ||
        { cat "$log"; fail "no new process took over"; }
    local new_pid
    new_pid=$(sed -n 's/.*upgrade: this process (pid \([0-9]*\)) serves every listener now.*/\1/p' "$log" | tail -n 1)
    echo "$new_pid" >"$work/server.pid"
    timeout 30 tail --pid="$old_pid" -f /dev/null || fail "the old porticod did not exit"
    # The new process took the control socket over.
    timeout 30 /usr/sbin/porticoctl status | grep -q "^porticod .*, pid $new_pid, " ||
        fail "porticoctl status does not reach the new process"
    kill -TERM "$new_pid"
    timeout 30 tail --pid="$new_pid" -f /dev/null || fail "the new porticod did not stop"
    rm -f "$work/server.pid"
    echo "--- porticod log"
    cat "$log"
    [[ $new_pid != "$old_pid" ]] || fail "the pid did not change"
    [[ $errors = 0 ]] || fail "$errors client(s) failed during the upgrade"
    [[ $ok -gt 50 ]] || fail "only $ok clients served"
    [[ $(dpkg-query -W -f='${Version}' portico) = *+upgradetest ]] || fail "the newer version is not installed"
    kill_server
}

man_coverage() {
    timeout 60 "$here/check-man-coverage.sh" /usr/sbin/porticod "$mandir"
}

man_lint() {
    local pages
    pages=$(grep -E '^/usr/share/man/man[0-9]/.+\.gz$' "$installed_list" || true)
    [[ -n $pages ]] || fail "the package installs no man page"
    grep -q '/man8/porticod\.8\.gz$' <<<"$pages" || fail "porticod.8 not installed"
    grep -q '/man5/portico\.toml\.5\.gz$' <<<"$pages" || fail "portico.toml.5 not installed"
    grep -q '/man1/portico-bench\.1\.gz$' <<<"$pages" || fail "portico-bench.1 not installed"
    grep -q '/man8/porticoctl\.8\.gz$' <<<"$pages" || fail "porticoctl.8 not installed"
    local p bad=0 out
    for p in $pages; do
        echo "== $p"
        out=$(mandoc -T lint -W all "$p" 2>&1) || true
        if [[ -n $out ]]; then echo "$out"; bad=1; fi
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$p" 2>&1 >/dev/null) || true
        if [[ -n $out ]]; then echo "man --warnings: $out"; bad=1; fi
        # whatis entry (lintian's manpage checks and apropos need NAME)
        lexgrog "$p" || bad=1
    done
    [[ $bad -eq 0 ]] || fail "man page warnings"
}

man_examples_valid() {
    # Every TOML example of portico.toml(5) (a literal block with [daemon] or
    # [[listener]]) must be a valid configuration.
    local exdir=$work/man-examples
    mkdir -p "$exdir"
    local n
    n=$(python3 - "$mandir/portico.toml.5.scd" "$exdir" <<'PY'
import os, re, sys
src, outdir = sys.argv[1], sys.argv[2]
n = 0
for block in re.findall(r"(?ms)^```\n(.*?)^```", open(src).read()):
    block = re.sub(r"(?m)^\t", "", block)
    if "[[listener]]" not in block and "[daemon]" not in block:
        continue
    n += 1
    with open(os.path.join(outdir, "example-%d.toml" % n), "w") as f:
        f.write(re.sub(r"\\(.)", r"\1", block))  # undo scdoc escapes
print(n)
PY
)
    [[ $n -gt 0 ]] || fail "no TOML example found in portico.toml.5.scd"
    local f bad=0
    example_certificates
    for f in "$exdir"/example-*.toml; do
        check_as_service "$f" || { cat "$f"; bad=1; }
    done
    remove_example_certificates
    [[ $bad -eq 0 ]] || fail "some examples of portico.toml(5) are not valid"
}

unit_path() {
    local u
    for u in /lib/systemd/system/portico.service /usr/lib/systemd/system/portico.service; do
        if [[ -f $u ]]; then echo "$u"; return 0; fi
    done
    return 1
}

unit_verify() {
    local unit out
    unit=$(unit_path) || fail "portico.service is not installed"
    out=$(timeout 120 systemd-analyze verify "$unit" 2>&1) || { echo "$out"; fail "systemd-analyze verify failed"; }
    echo "$out"
    # clean: nothing said about our unit (other units of the host may warn)
    if grep -i 'portico' <<<"$out"; then
        fail "systemd-analyze verify warns about portico.service"
    fi
}

unit_security() {
    local out level
    out=$(timeout 120 systemd-analyze security --offline=true --no-pager portico.service 2>&1) || true
    grep -E '✗|Overall' <<<"$out" || true
    level=$(sed -n 's/.*Overall exposure level for portico\.service: \([0-9.]*\).*/\1/p' <<<"$out")
    [[ -n $level ]] || { echo "$out"; fail "no exposure level in systemd-analyze security output"; }
    echo "exposure: $level"
    awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "exposure $level > 2.0"
}

dev_package() {
    dpkg-query -W libportico-dev >/dev/null 2>&1 || { echo "no libportico-dev package"; return 77; }
    local d=$work/consumer
    mkdir -p "$d"
    cat >"$d/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(consumer LANGUAGES CXX)
find_package(portico REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE portico::portico)
EOF
    local hdr
    hdr=$(grep -E '^/usr/include/portico/.+\.hpp$' "$installed_list" | head -n 1)
    [[ -n $hdr ]] || fail "libportico-dev installs no header"
    printf '#include <portico/%s>\nint main() { return 0; }\n' "${hdr#/usr/include/portico/}" >"$d/main.cpp"
    timeout 300 cmake -S "$d" -B "$d/build" -DCMAKE_BUILD_TYPE=Release
    timeout 600 cmake --build "$d/build"
    "$d/build/consumer"
}

purged_clean() {
    purge_if_installed
    local st
    st=$(dpkg-query -W -f='${db:Status-Status}' portico 2>/dev/null || echo not-installed)
    [[ $st = not-installed ]] || fail "portico still known to dpkg: $st"
    if [[ -n $(dpkg -L portico 2>/dev/null || true) ]]; then
        fail "dpkg -L portico still lists files"
    fi
    local left=() f
    while IFS= read -r f; do
        [[ -n $f && $f != /. ]] || continue
        # directories (and symlinks to them, like /lib) may be shared
        [[ -d $f ]] && continue
        if [[ -e $f || -L $f ]]; then
            left+=("$f")
        fi
    done <"$installed_list"
    for f in /etc/portico /usr/share/doc/portico /usr/share/doc/libportico-dev \
        /usr/include/portico /etc/systemd/system/multi-user.target.wants/portico.service \
        /var/lib/systemd/deb-systemd-helper-enabled/portico.service \
        /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/portico.service \
        /var/lib/systemd/deb-systemd-helper-masked/portico.service \
        /var/log/portico /var/lib/portico /run/portico; do
        if [[ -e $f || -L $f ]]; then left+=("$f"); fi
    done
    # other files of ours anywhere on the usual paths (conffile backups...)
    while IFS= read -r f; do left+=("$f"); done < <(
        find /etc /usr /var/lib/dpkg/info /var/lib/systemd -xdev \( -name 'portico.toml*' -o -name 'porticod*' \
            -o -name 'portico.service*' -o -name 'portico.list' -o -name 'portico.conffiles' \
            -o -name 'portico.postinst' -o -name 'portico.postrm' -o -name 'libportico*' \) \
            -not -path "$top/*" 2>/dev/null)
    if [[ ${#left[@]} -gt 0 ]]; then
        printf 'left behind: %s\n' "${left[@]}"
        fail "purge left files behind"
    fi
    echo "nothing left; user portico kept: $(getent passwd portico || echo '(none)')"
}

reinstall() {
    install_pkgs
    check_as_service /etc/portico/portico.toml
}

# --- run ------------------------------------------------------------------

echo "portico packaging test in $work"
if [[ $# -ge 1 ]]; then
    step "use prebuilt .deb files from $1" use_prebuilt "$(cd "$1" && pwd)"
else
    step "build .deb with packaging/build-deb" build_debs
fi
if ! compgen -G "$debdir/portico_*.deb" >/dev/null; then
    echo "no package to test; stopping"
    finish
fi
step "lintian: no error or warning" lintian_clean
step "install with apt-get install ./portico_*.deb" install_pkgs
if ! [[ -x /usr/sbin/porticod ]]; then
    echo "porticod is not installed; stopping"
    finish
fi
step "conffile /etc/portico/portico.toml registered" conffile_registered
step "porticod --check of the packaged config: 0 as the service user, 78 with the reason as root" config_checks
step "/etc/portico/tls is root:portico 0750 and the service user reads its keys" tls_directory
step "every commented example of portico.toml passes --check uncommented" commented_examples_valid
step "porticod as user portico answers 'Hello from server!' on 127.0.0.1:8888" serve_greeting
step "dpkg -i of a newer version under a client loop: the running porticod hands over, no client refused" upgrade_under_load
step "systemctl reload runs porticoctl reload, which exits 78 on a broken file" reload_with_porticoctl
step "man pages cover --help and --list-handlers" man_coverage
step "installed man pages lint clean (mandoc, man --warnings)" man_lint
step "portico.toml(5) examples pass porticod --check" man_examples_valid
step "systemd-analyze verify portico.service" unit_verify
step "systemd-analyze security exposure <= 2.0" unit_security
step "libportico-dev: find_package(portico) and link portico::portico" dev_package
step "purge leaves nothing behind" purged_clean
step "reinstall after purge" reinstall
step "purge again leaves nothing behind" purged_clean
finish
