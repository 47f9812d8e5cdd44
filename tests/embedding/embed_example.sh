#!/usr/bin/env bash
# Installs a portico build into a staging directory, builds examples/embed
# against the installed package, runs it and checks, over 127.0.0.1, that it
# serves its own handler type (shout) and a built-in one (echo), then that it
# stops cleanly on SIGTERM. Every step is bounded in time; everything is
# removed afterwards.
#
# usage: embed_example.sh BUILD_DIR EXAMPLE_DIR CMAKE CXX BUILD_TYPE CXX_FLAGS LINK_FLAGS
set -euo pipefail

[[ $# -eq 7 ]] || { echo "usage: $0 BUILD_DIR EXAMPLE_DIR CMAKE CXX BUILD_TYPE CXX_FLAGS LINK_FLAGS" >&2; exit 2; }
build=$1 example=$2 cmake=$3 cxx=$4 build_type=$5 cxx_flags=$6 link_flags=$7

work=$(mktemp -d "${TMPDIR:-/tmp}/portico-embed.XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "embed_example.sh: FAIL: $*" >&2
    if [[ -s $work/err ]]; then sed 's/^/  portico-embed: /' "$work/err" >&2; fi
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
for header in portico.hpp plugin.hpp version_config.hpp; do
    [[ -f $prefix/include/portico/$header ]] || fail "include/portico/$header is not installed"
done
config=$(find "$prefix" -name porticoConfig.cmake -print -quit)
[[ -n $config ]] || fail "porticoConfig.cmake is not installed"
echo "   found $config"

echo "== building $example against it"
timeout 300 "$cmake" -S "$example" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$link_flags" || fail "configuring the example failed"
timeout 480 "$cmake" --build "$work/build" -j2 || fail "building the example failed"

echo "== running it"
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
echo "== OK"
