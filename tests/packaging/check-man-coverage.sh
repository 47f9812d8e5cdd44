#!/bin/bash
# check-man-coverage.sh PORTICOD MANDIR
#
# Fails (exit 1, listing what is missing) unless the man page sources
# (MANDIR/*.scd) document everything the binary says it has:
#  - every long option (--xxx) printed by `PORTICOD --help`;
#  - every handler type printed by `PORTICOD --list-handlers`, as a heading of
#    its own ("## NAME" in portico.toml.5.scd);
#  - every option of that handler, inside that heading's section;
#  - every [daemon] key and every listener key the configuration accepts, as a
#    "*key* = _type_" entry of the DAEMON SETTINGS or LISTENER SETTINGS
#    section (subsections included) of portico.toml.5.scd.
# --list-handlers prints, per handler, a line "NAME: doc" at column 0, then one
# line per option indented by 4 spaces: name, type, default, doc.
# The keys come from `PORTICOD --print-config` on a probe configuration (see
# probe_config below): it prints every key of [daemon] and of each
# [[listener]], one "key = value" line each, then the handler's options.
# Exit status: 0 all documented, 1 something missing, 2 usage or tool error.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PORTICOD MANDIR" >&2
    exit 2
fi
porticod=$1
mandir=$2

shopt -s nullglob
sources=("$mandir"/*.scd)
shopt -u nullglob
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "$0: no *.scd man page sources in $mandir" >&2
    exit 2
fi

if ! help_out=$("$porticod" --help 2>&1); then
    echo "$0: '$porticod --help' failed:" >&2
    printf '%s\n' "$help_out" >&2
    exit 2
fi
if ! handlers_out=$("$porticod" --list-handlers 2>&1); then
    echo "$0: '$porticod --list-handlers' failed:" >&2
    printf '%s\n' "$handlers_out" >&2
    exit 2
fi

# All sources as one text, with scdoc escapes (\_ \* \\) undone.
all_text=$(cat -- "${sources[@]}" | sed 's/\\\(.\)/\1/g')

# word_in TEXT WORD: WORD occurs in TEXT, not as part of a longer name
# (letters, digits, '_' and '-' continue a name).
word_in() {
    local re
    re=$(printf '%s' "$2" | sed 's/[][\.*^$+?(){}|/]/\\&/g')
    grep -Eq -- "(^|[^A-Za-z0-9_-])${re}([^A-Za-z0-9_-]|\$)" <<<"$1"
}

# section_of NAME: the text of every section (any level of heading) whose
# heading is NAME alone, or NAME followed by a word such as "handler".
section_of() {
    printf '%s\n' "$all_text" | awk -v name="$1" '
        /^#+ / {
            title = $0
            sub(/^#+ +/, "", title)
            split(title, w, " ")
            level = length($0) - length(substr($0, index($0, " ")))
            if (insec && level <= seclevel) insec = 0
            if (!insec && tolower(w[1]) == tolower(name)) { insec = 1; seclevel = level; next }
        }
        insec { print }'
}

missing=()
checked=0

# Long options: every --xxx of --help, whatever its layout.
mapfile -t long_opts < <(printf '%s\n' "$help_out" |
    grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u)
if [[ ${#long_opts[@]} -eq 0 ]]; then
    echo "$0: found no --option in '$porticod --help'" >&2
    exit 2
fi
for opt in "${long_opts[@]}"; do
    checked=$((checked + 1))
    word_in "$all_text" "$opt" || missing+=("option $opt (from --help)")
done

# Handlers and their options.
handler=""
nhandlers=0
while IFS= read -r line; do
    if [[ $line =~ ^([A-Za-z0-9_.-]+):([[:space:]]|$) ]]; then
        handler=${BASH_REMATCH[1]}
        nhandlers=$((nhandlers + 1))
        checked=$((checked + 1))
        section=$(section_of "$handler")
        if [[ -z $section ]]; then
            missing+=("handler $handler (no '## $handler' section)")
        fi
    elif [[ $line =~ ^\ {4}([A-Za-z_][A-Za-z0-9_-]*)([[:space:]]|$) ]]; then
        opt=${BASH_REMATCH[1]}
        if [[ -z $handler ]]; then
            echo "$0: option line before any handler line: $line" >&2
            exit 2
        fi
        checked=$((checked + 1))
        # Inside the handler's section when it has one, else anywhere.
        if [[ -n $section ]]; then
            word_in "$section" "$opt" || missing+=("option $opt of handler $handler")
        else
            word_in "$all_text" "$opt" || missing+=("option $opt of handler $handler")
        fi
    fi
done <<<"$handlers_out"
if [[ $nhandlers -eq 0 ]]; then
    echo "$0: found no handler in '$porticod --list-handlers'" >&2
    exit 2
fi

# [daemon] and listener keys. --print-config leaves out some keys unless they
# apply, so the probe sets them: user, group, pid_file, log_file and
# access_log (for access_log_format and the listeners' access_log) (names
# that exist, paths that are never opened), an IPv6 listener with a rate (for
# burst) and proxy_protocol (for proxy_protocol_timeout), and a Unix one with
# socket_mode, socket_user and socket_group. A new key printed only under some condition needs that
# condition here. Its listeners run the handler probe_handler, whose own
# options are not listener keys.
probe_handler=echo
probe_config='[daemon]
user = "nobody"
group = "nogroup"
pid_file = "/nonexistent/portico-probe.pid"
log_file = "/nonexistent/portico-probe.log"
access_log = "/nonexistent/portico-probe-access.log"

[[listener]]
name = "probe-ip"
address = "[::1]:0"
handler = "'"$probe_handler"'"
rate = 1
proxy_protocol = true

[[listener]]
name = "probe-unix"
address = "unix:/nonexistent/portico-probe.sock"
handler = "'"$probe_handler"'"
socket_mode = "0660"
socket_user = "nobody"
socket_group = "nogroup"
'
probe_file=$(mktemp "${TMPDIR:-/tmp}/portico-man-coverage.XXXXXX")
trap 'rm -f "$probe_file"' EXIT
printf '%s' "$probe_config" >"$probe_file"
if ! printed=$("$porticod" --print-config -c "$probe_file" 2>&1); then
    echo "$0: '$porticod --print-config' failed on the probe configuration:" >&2
    printf '%s\n' "$printed" >&2
    exit 2
fi
# The probe handler's options, to leave out of the listener keys.
probe_options=$(printf '%s\n' "$handlers_out" | awk -v h="$probe_handler" '
    /^[^ ]/ { cur = $0; sub(/:.*/, "", cur); seen[cur] = 1; next }
    cur == h && /^    [A-Za-z_]/ { print $1 }
    END { if (!(h in seen)) exit 1 }') || {
    echo "$0: handler $probe_handler (used by the probe configuration) not in --list-handlers" >&2
    exit 2
}
# keys_of TABLE: the keys printed in "[TABLE]" or "[[TABLE]]" sections.
keys_of() {
    printf '%s\n' "$printed" | awk -v t="$1" '
        /^\[/ { sec = $0; gsub(/[][]/, "", sec); next }
        sec == t && /^[A-Za-z_][A-Za-z0-9_-]* = / { print $1 }' | sort -u
}
mapfile -t daemon_keys < <(keys_of daemon)
mapfile -t listener_keys < <(keys_of listener | grep -vxF -f <(printf '%s\n' "$probe_options" | sed '/^$/d') || true)
if [[ ${#daemon_keys[@]} -eq 0 || ${#listener_keys[@]} -eq 0 ]]; then
    echo "$0: found no [daemon] or no listener key in '$porticod --print-config':" >&2
    printf '%s\n' "$printed" >&2
    exit 2
fi
# has_entry TEXT KEY: TEXT has a line starting "*KEY* =" (a definition entry).
has_entry() {
    local re
    re=$(printf '%s' "$2" | sed 's/[][\.*^$+?(){}|/]/\\&/g')
    grep -Eq -- "^\*${re}\* =" <<<"$1"
}
daemon_section=$(section_of DAEMON)
listener_section=$(section_of LISTENER)
for key in "${daemon_keys[@]}"; do
    checked=$((checked + 1))
    has_entry "$daemon_section" "$key" || missing+=("[daemon] key $key (no '*$key* =' entry under '# DAEMON SETTINGS')")
done
for key in "${listener_keys[@]}"; do
    checked=$((checked + 1))
    has_entry "$listener_section" "$key" || missing+=("listener key $key (no '*$key* =' entry under '# LISTENER SETTINGS')")
done

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "man page coverage: ${#missing[@]} of $checked names are not documented in $mandir/*.scd:"
    printf '  %s\n' "${missing[@]}"
    exit 1
fi
echo "man page coverage: all $checked names documented (${#long_opts[@]} long options, $nhandlers handlers and their options, ${#daemon_keys[@]} [daemon] keys, ${#listener_keys[@]} listener keys)"
