#!/bin/bash
# check-man-coverage.sh PORTICOD MANDIR
#
# Fails (exit 1, listing what is missing) unless the man page sources
# (MANDIR/*.scd) document everything the binary says it has:
#  - every long option (--xxx) printed by `PORTICOD --help`;
#  - every handler type printed by `PORTICOD --list-handlers`, as a heading of
#    its own ("## NAME" in portico.toml.5.scd);
#  - every option of that handler, inside that heading's section.
# --list-handlers prints, per handler, a line "NAME: doc" at column 0, then one
# line per option indented by 4 spaces: name, type, default, doc.
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

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "man page coverage: ${#missing[@]} of $checked names are not documented in $mandir/*.scd:"
    printf '  %s\n' "${missing[@]}"
    exit 1
fi
echo "man page coverage: all $checked names documented (${#long_opts[@]} long options, $nhandlers handlers and their options)"
