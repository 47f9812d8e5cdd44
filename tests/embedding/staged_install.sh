#!/usr/bin/env bash
# The paths of a handler author, with nothing but an installed portico:
# installs a portico build into a staging directory, then
#  - builds examples/embed against the installed package, runs it and checks,
#    over 127.0.0.1, that it serves its own handler type (shout) and a
#    built-in one (echo), then that it stops cleanly on SIGTERM;
#  - builds examples/plugin against the installed package, runs its own test
#    (which uses the installed <portico/testing.hpp>), loads the plugin into
#    the installed porticod and talks to it.
# Every step is bounded in time; everything is removed afterwards.
#
# usage: staged_install.sh BUILD_DIR EXAMPLES_DIR CMAKE CXX BUILD_TYPE CXX_FLAGS LINK_FLAGS
set -euo pipefail

[[ $# -eq 7 ]] || { echo "usage: $0 BUILD_DIR EXAMPLES_DIR CMAKE CXX BUILD_TYPE CXX_FLAGS LINK_FLAGS" >&2; exit 2; }
build=$1 examples=$2 cmake=$3 cxx=$4 build_type=$5 cxx_flags=$6 link_flags=$7
example=$examples/embed

work=$(mktemp -d "${TMPDIR:-/tmp}/portico-staged.XXXXXX")
# porticod may run as nobody: it must be able to read the plugin.
chmod 755 "$work"
pid=
cleanup() {
    for p in $pid ${daemon_pid:-}; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "staged_install.sh: FAIL: $*" >&2
    if [[ -s $work/err ]]; then sed 's/^/  portico-embed: /' "$work/err" >&2; fi
    if [[ -s $work/porticod.log ]]; then sed 's/^/  porticod: /' "$work/porticod.log" >&2; fi
    exit 1
}

# Staged with DESTDIR under a prefix other than the directory it is used
# from, as a distribution package is built: the package must be
# relocatable. DESTDIR also keeps any absolute install destination inside
# the staging directory.
echo "== cmake --install $build (DESTDIR=$work/stage, prefix /opt/portico)"
if ! DESTDIR=$work/stage timeout 300 "$cmake" --install "$build" --prefix /opt/portico >"$work/install.log" 2>&1; then
    cat "$work/install.log" >&2
    fail "cmake --install failed"
fi
prefix=$work/stage/opt/portico
for header in portico.hpp plugin.hpp version.hpp testing.hpp; do
    [[ -f $prefix/include/portico/$header ]] || fail "include/portico/$header is not installed"
done
config=$(find "$prefix" -name porticoConfig.cmake -print -quit)
[[ -n $config ]] || fail "porticoConfig.cmake is not installed"
echo "   found $config"

[[ -x $prefix/sbin/porticod ]] || fail "sbin/porticod is not installed"
config_dir=$(dirname "$config")
[[ -f $config_dir/porticoPlugin.cmake ]] || fail "porticoPlugin.cmake is not installed next to porticoConfig.cmake"
# Nothing of the source or build tree may be needed from here on.
cp -r "$examples/embed" "$examples/plugin" "$work/"
example=$work/embed

echo "== building $example against it"
timeout 300 "$cmake" -S "$example" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$link_flags" || fail "configuring the example failed"
timeout 480 "$cmake" --build "$work/build" -j2 || fail "building the example failed"

echo "== running it"
# Made before the program starts: the loop below may read it before the
# background shell has opened it.
: >"$work/out"
"$work/build/portico-embed" >"$work/out" 2>"$work/err" &
pid=$!
shout_port= echo_port=
for ((i = 0; i < 300; i++)); do
    shout_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\) (shout)$/\1/p' "$work/out")
    echo_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\) (echo)$/\1/p' "$work/out")
    [[ -n $shout_port && -n $echo_port ]] && break
    kill -0 "$pid" 2>/dev/null || fail "portico-embed exited before listening"
    sleep 0.1
done
[[ -n $shout_port && -n $echo_port ]] || fail "portico-embed printed no listening lines within 30s: $(cat "$work/out")"
echo "   shout on port $shout_port, echo on port $echo_port"

# shout: one line in, the same line in capitals out, then the server closes.
exec 3<>"/dev/tcp/127.0.0.1/$shout_port"
printf 'hello, portico\n' >&3
timeout 10 cat <&3 >"$work/shout.reply" || fail "shout did not answer and close within 10s"
exec 3<&-
printf 'HELLO, PORTICO\n' | cmp -s - "$work/shout.reply" ||
    fail "shout answered $(od -An -c "$work/shout.reply"), expected \"HELLO, PORTICO\\n\""

# echo, a built-in handler type, through the same installed library.
exec 4<>"/dev/tcp/127.0.0.1/$echo_port"
printf 'ping\n' >&4
timeout 10 head -c 5 <&4 >"$work/echo.reply" || fail "echo did not answer within 10s"
exec 4<&-
printf 'ping\n' | cmp -s - "$work/echo.reply" ||
    fail "echo answered $(od -An -c "$work/echo.reply"), expected \"ping\\n\""

echo "== stopping it with SIGTERM"
kill -TERM "$pid"
for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "portico-embed still running 10s after SIGTERM"
status=0
wait "$pid" || status=$?
pid=
[[ $status -eq 0 ]] || fail "portico-embed exited with status $status"

echo "== building $work/plugin against it"
timeout 300 "$cmake" -S "$work/plugin" -B "$work/plugin-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$link_flags" \
    -DCMAKE_SHARED_LINKER_FLAGS="$link_flags" -DCMAKE_MODULE_LINKER_FLAGS="$link_flags" ||
    fail "configuring the plugin failed"
timeout 480 "$cmake" --build "$work/plugin-build" -j2 || fail "building the plugin failed"
plugin=$work/plugin-build/libhello.so
[[ -f $plugin ]] || fail "the build made no libhello.so"

echo "== the plugin's own test"
(cd "$work/plugin-build" && timeout 120 ctest --output-on-failure) || fail "the plugin's test failed"

echo "== loading it into the installed porticod"
cat >"$work/porticod.toml" <<TOML
[daemon]
plugins = ["$plugin"]
user = "nobody"
shutdown_timeout = "2s"

[[listener]]
name = "hello"
address = "127.0.0.1:0"
handler = "hello"
who = "staged install"
TOML
"$prefix/sbin/porticod" --check -c "$work/porticod.toml" || fail "porticod --check refused the plugin's config"
: >"$work/porticod.log"
"$prefix/sbin/porticod" -c "$work/porticod.toml" 2>"$work/porticod.log" &
daemon_pid=$!
hello_port=
for ((i = 0; i < 300; i++)); do
    hello_port=$(sed -n 's/.*serving hello on 127\.0\.0\.1:\([0-9][0-9]*\) (hello)$/\1/p' "$work/porticod.log")
    [[ -n $hello_port ]] && break
    kill -0 "$daemon_pid" 2>/dev/null || fail "porticod exited before serving"
    sleep 0.1
done
[[ -n $hello_port ]] || fail "porticod printed no serving line within 30s"
exec 5<>"/dev/tcp/127.0.0.1/$hello_port"
timeout 10 cat <&5 >"$work/hello.reply" || fail "the plugin did not answer and close within 10s"
exec 5<&-
printf 'Hello, staged install!\n' | cmp -s - "$work/hello.reply" ||
    fail "the plugin answered $(od -An -c "$work/hello.reply"), expected \"Hello, staged install!\\n\""
kill -TERM "$daemon_pid"
status=0
timeout 10 tail --pid="$daemon_pid" -f /dev/null || fail "porticod still running 10s after SIGTERM"
wait "$daemon_pid" || status=$?
daemon_pid=
[[ $status -eq 0 ]] || fail "porticod exited with status $status"
echo "== OK"
