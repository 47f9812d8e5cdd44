# tidy-roff.awk: clean the man(7) roff that scdoc writes, so that the pages
# pass `mandoc -T lint` and `man --warnings` without a message.
#
#   scdoc < page.8.scd | awk -f tidy-roff.awk > page.8
#
# It changes only the source layout, never what the page says:
#  - drops paragraph macros (.P/.PP) that do nothing: right after .TH, .SH,
#    .SS or another paragraph macro, or right before one of those or the end
#    of the page; one right before .RE moves to after it ("skipping paragraph
#    macro" warnings);
#  - re-wraps text lines longer than 80 bytes at a space (outside .nf/.fi
#    no-fill blocks, where line breaks matter), which is the same text in
#    fill mode ("input text line longer than 80 bytes" style messages).
# POSIX awk (mawk, gawk, busybox).

function is_para(l)    { return l ~ /^\.(P|PP|LP)[ \t]*$/ }
function is_heading(l) { return l ~ /^\.(TH|SH|SS)([ \t]|$)/ }
function is_comment(l) { return l ~ /^\.\\"/ }

# Print a text line, split at spaces into pieces of at most 80 bytes. A piece
# that would start with a control character (. or ') gets a \& in front, so it
# stays text. A word longer than 80 bytes stays whole.
function emit_text(l,    cut, i, rest) {
    while (length(l) > 80) {
        cut = 0
        for (i = 81; i > 1; i--)
            if (substr(l, i, 1) == " ") { cut = i; break }
        if (cut == 0) break
        print substr(l, 1, cut - 1)
        rest = substr(l, cut + 1)
        sub(/^ +/, "", rest)
        if (rest ~ /^[.']/) rest = "\\&" rest
        l = rest
    }
    print l
}

{ lines[NR] = $0 }

function is_re(l) { return l ~ /^\.RE([ \t]|$)/ }

# index of the next line after n that is not a comment (NR + 1 at the end)
function next_line(n,    m) {
    for (m = n + 1; m <= NR && is_comment(lines[m]); m++) ;
    return m
}

END {
    nofill = 0
    pending = 0        # a paragraph break moved to after the coming .RE
    prev = ""          # last macro or text line kept (comments do not count)
    for (n = 1; n <= NR; n++) {
        l = lines[n]
        if (is_comment(l)) { print l; continue }
        if (is_para(l)) {
            if (is_para(prev) || is_heading(prev)) continue
            m = next_line(n)
            if (m > NR || is_para(lines[m]) || is_heading(lines[m])) continue
            if (is_re(lines[m])) { pending = 1; continue }
        }
        if (l ~ /^\.nf([ \t]|$)/) nofill = 1
        else if (l ~ /^\.fi([ \t]|$)/) nofill = 0
        if (!nofill && l !~ /^[.']/ && length(l) > 80) emit_text(l)
        else print l
        prev = l
        if (is_re(l) && pending) {
            m = next_line(n)
            if (m <= NR && is_re(lines[m])) continue
            pending = 0
            if (m > NR || is_para(lines[m]) || is_heading(lines[m])) continue
            print ".P"
            prev = ".P"
        }
    }
}
