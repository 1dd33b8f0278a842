#!/usr/bin/env bash
# Measures code fingerprints against rebuilds (issue 9, item 4): builds
# tests/fingerprint_rebuild_prog.c (13 "cached" functions) with one knob at a
# time and compares the fingerprints each build prints with the base build's.
#   (a) an unchanged rebuild                      must change nothing
#   (b) an unrelated edit (code and data move)    must change nothing (false alarms)
#       and lines added above (assert's line moves)
#   (c) a real change to a function or its data   must change that function (misses)
#   (d) other compiler flags                      reported (alarms expected)
# Checks (a) to (c) at -O2 and -O0, and -g0 against -g; prints a table and
# exits 1 when one fails. Usage: fingerprint_rebuild.sh SOURCE_DIR WORK_DIR [CC]
set -euo pipefail
src="$1"
work="$2"
cc="${3:-cc}"
rm -rf "$work"
mkdir -p "$work"
deps="libelf capstone libxxhash"
objs=()
for f in function/fingerprint function/fp_elf function/fp_walk util/grow; do
    "$cc" -c -O2 -std=c11 -D_GNU_SOURCE -DJC_HAVE_FINGERPRINT=1 -I"$src/src" -I"$src/include" \
        $(pkg-config --cflags $deps) "$src/src/$f.c" -o "$work/${f#*/}.o"
    objs+=("$work/${f#*/}.o")
done
libs="$(pkg-config --libs $deps) -lm -lpthread"

# build NAME FLAGS...: builds $work/NAME and writes its fingerprints to NAME.fp
build() {
    local name="$1"; shift
    "$cc" -std=c11 -D_GNU_SOURCE -I"$src/src" -I"$src/include" "$@" \
        "$src/tests/fingerprint_rebuild_prog.c" "${objs[@]}" $libs -o "$work/$name"
    "$work/$name" > "$work/$name.fp"
}

# changed A B: the functions whose fingerprints differ (or are unknown).
changed() {
    join "$work/$1.fp" "$work/$2.fp" | awk '$2 != $3 || $2 == "unknown" {print $1}' | tr '\n' ' '
}

# moved A B: how many of the functions have another address in B.
moved() {
    local n=0 f a b
    for f in $(cut -d' ' -f1 "$work/$1.fp"); do
        a=$(nm "$work/$1" | awk -v f="$f" '$3 == f {print $1}')
        b=$(nm "$work/$2" | awk -v f="$f" '$3 == f {print $1}')
        [ "$a" != "$b" ] && n=$((n + 1))
    done
    echo "$n"
}

total=$(grep -c . "$work/fingerprint_rebuild_prog.fp" 2>/dev/null || true)
fail=0
row() { printf '%-34s %-9s %s\n' "$1" "$2" "$3"; }

# expect_none BASE OTHER LABEL: nothing may change.
expect_none() {
    local c; c=$(changed "$1" "$2")
    local n; n=$(wc -w <<<"$c")
    if [ "$n" -eq 0 ]; then row "$3" "0/$total" "ok"; else row "$3" "$n/$total" "FALSE ALARM: $c"; fail=1; fi
}

# expect_change BASE OTHER LABEL EXPECTED...: those must change.
expect_change() {
    local base="$1" other="$2" label="$3"; shift 3
    local c; c=" $(changed "$base" "$other") "
    local miss="" extra="" f
    for f in "$@"; do [[ "$c" == *" $f "* ]] || miss+="$f "; done
    for f in $c; do [[ " $* " == *" $f "* ]] || extra+="$f "; done
    local n; n=$(wc -w <<<"$c")
    if [ -n "$miss" ]; then row "$label" "$n/$total" "MISSED: $miss"; fail=1
    else row "$label" "$n/$total" "ok: ${*}${extra:+ (also: $extra)}"; fi
}

report() {
    local c; c=$(changed "$1" "$2")
    row "$3" "$(wc -w <<<"$c")/$total" "${c:-none}"
}

for opt in -O2 -O0; do
    o=${opt#-}
    build "base$o" "$opt" -g
    total=$(grep -c . "$work/base$o.fp")
    if grep -q unknown "$work/base$o.fp"; then
        echo "unknown fingerprints in the base build:"; cat "$work/base$o.fp"; exit 1
    fi
    build "again$o" "$opt" -g
    build "unrelated$o" "$opt" -g -DUNRELATED
    build "lines$o" "$opt" -g -DMOVE_LINES
    echo "== $opt: functions changed / measured"
    expect_none "base$o" "again$o" "(a) unchanged rebuild"
    expect_none "base$o" "unrelated$o" "(b) unrelated edit ($(moved "base$o" "unrelated$o")/$total moved)"
    expect_none "base$o" "lines$o" "(b) lines added above (assert)"
    for change in "SQ sq calls_root" "HELPER with_helper" "GLOBAL with_global" "STRING with_strings" \
                  "LIBM with_libm" "CALLBACK with_callback" "SWITCH with_switch" "TABLE with_table" \
                  "CONST with_consts" "ASSERT with_assert"; do
        set -- $change
        knob="$1"; shift
        build "change_$knob$o" "$opt" -g "-DCHANGE_$knob"
        expect_change "base$o" "change_$knob$o" "(c) change $knob" "$@"
    done
done

echo "== compiler flags: functions changed / measured"
build g0 -O2 -g0
expect_none baseO2 g0 "-g -> -g0"
build O1 -O1 -g
build O3 -O3 -g
build nopie -O2 -g -fno-pie -no-pie
build nopie_unrelated -O2 -g -fno-pie -no-pie -DUNRELATED
build native -O2 -g -march=native
report baseO2 baseO0 "(d) -O2 -> -O0"
report baseO2 O1 "(d) -O2 -> -O1"
report baseO2 O3 "(d) -O2 -> -O3"
report baseO2 native "(d) -O2 -> -O2 -march=native"
report baseO2 nopie "(d) PIE -> -no-pie"
report nopie nopie_unrelated "(d) -no-pie: unrelated edit"
exit $fail
