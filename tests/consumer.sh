#!/usr/bin/env bash
# Installs jobcache to a temporary prefix and builds and runs
# examples/consumer four ways: pkg-config and find_package, each against the
# shared and the static library; builds examples/sweep.c with the README's
# pkg-config recipe and runs it with no loader help (rpath); checks that a
# shared consumer needs no .pc file of jobcache's dependencies; and, given
# PYTHON, that the Python reader is installed and reads the sweep's cache.
# Usage: consumer.sh SOURCE_DIR BUILD_DIR [PYTHON]
set -euo pipefail
src="$1"
build="$2"
python="${3:-}"
work="$build/consumer-test"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name jobcache.pc)")
export PKG_CONFIG_PATH="$libdir"

for linkage in shared static; do
    out="$work/pkgconfig-$linkage"
    cp -r "$src/examples/consumer" "$out"
    if [ $linkage = static ]; then make -s -C "$out" STATIC=1; else make -s -C "$out"; fi
    if [ $linkage = static ] && grep -q libjobcache <<<"$(ldd "$out/consumer")"; then
        echo "pkg-config static build links libjobcache dynamically" >&2; exit 1
    fi
    (cd "$out" && LD_LIBRARY_PATH="$prefix/lib:$libdir/.." ./consumer "$out/c.db")
    if [ $linkage = shared ]; then
        # Without the dependencies' .pc files (PKG_CONFIG_LIBDIR hides the
        # system's): a shared consumer needs none of their dev files.
        out="$work/pkgconfig-nodeps"
        cp -r "$src/examples/consumer" "$out"
        PKG_CONFIG_LIBDIR="$libdir" make -s -C "$out"
        (cd "$out" && LD_LIBRARY_PATH="$prefix/lib:$libdir/.." ./consumer "$out/c.db")
    fi

    out="$work/cmake-$linkage"
    flag=OFF; [ $linkage = static ] && flag=ON
    cmake -S "$src/examples/consumer" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_STATIC=$flag >/dev/null
    cmake --build "$out" >/dev/null
    if [ $linkage = static ] && grep -q libjobcache <<<"$(ldd "$out/consumer")"; then
        echo "find_package static build links libjobcache dynamically" >&2; exit 1
    fi
    if [ $linkage = shared ] && ! grep -q "libjobcache.so.0.4 " <<<"$(ldd "$out/consumer")"; then
        echo "find_package shared build does not link libjobcache.so.0.4" >&2; exit 1
    fi
    (cd "$out" && ./consumer "$out/c.db")
done
# The same without the dependencies' .pc files: find_package still gives the
# shared library (the static one needs them).
out="$work/cmake-nodeps"
PKG_CONFIG_LIBDIR="$libdir" cmake -S "$src/examples/consumer" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$out" >/dev/null
(cd "$out" && ./consumer "$out/c.db")
if PKG_CONFIG_LIBDIR="$libdir" cmake -S "$src/examples/consumer" -B "$work/cmake-nodeps-static" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_STATIC=ON >"$work/nodeps-static.log" 2>&1 &&
   cmake --build "$work/cmake-nodeps-static" >>"$work/nodeps-static.log" 2>&1; then
    echo "find_package: a static link without the dependencies' .pc files should fail" >&2; exit 1
fi

# The README's pkg-config recipe, verbatim, on the demo: the program starts
# from the prefix with no LD_LIBRARY_PATH and no ldconfig (-Wl,-rpath).
recipe=$(grep -m1 '^cc sweep.c $(pkg-config --cflags --libs jobcache) -Wl,-rpath' "$src/README.md")
[ -n "$recipe" ] || { echo "README.md has no pkg-config recipe with -Wl,-rpath" >&2; exit 1; }
out="$work/readme-recipe"
mkdir -p "$out"
cp "$src/examples/sweep.c" "$out/"
(cd "$out" && export PKG_CONFIG_LIBDIR="$libdir" && eval "$recipe")
dyn=$(readelf -d "$out/sweep")
grep -Eq '(RPATH|RUNPATH).*'"$prefix" <<<"$dyn" || { echo "README recipe: no rpath to $prefix" >&2; exit 1; }
(cd "$out" && env -u LD_LIBRARY_PATH JOBCACHE_PATH="$out/sweep.db" ./sweep 2 1 >/dev/null)
# (readelf's and ldd's output is captured first: with pipefail, grep -q
# ending the pipe early fails it by SIGPIPE at random; .ci/deps.sh.)
deps=$(env -u LD_LIBRARY_PATH ldd "$out/sweep")
grep -q "libjobcache.so.0.4 => $prefix" <<<"$deps" || { echo "README recipe: libjobcache not from $prefix" >&2; exit 1; }

# The Python reader, installed into the prefix's site directory.
if [ -n "$python" ]; then
    pyfile=$(find "$prefix" -path '*/jobcache/reader.py')
    pyfile="${pyfile%%$'\n'*}"
    [ -n "$pyfile" ] || { echo "the Python reader is not installed in $prefix" >&2; exit 1; }
    PYTHONPATH="$(dirname "$(dirname "$pyfile")")" "$python" -c '
import sys, jobcache
assert jobcache.__file__.startswith(sys.argv[1]), jobcache.__file__
c = jobcache.open(sys.argv[2])
assert c.functions() == [("sir", "v1", 16)], c.functions()
' "$prefix" "$out/sweep.db"
fi

# The bash completion, where bash-completion looks for a prefix on
# XDG_DATA_DIRS (the README's line for a prefix of one's own): its loader
# finds it there and sets the completion of jobcache.
comp="$prefix/share/bash-completion/completions/jobcache"
[ -f "$comp" ] || { echo "the bash completion is not installed as $comp" >&2; exit 1; }
loader=/usr/share/bash-completion/bash_completion
if [ -f "$loader" ]; then
    spec=$(XDG_DATA_DIRS="$prefix/share:/usr/share" \
        bash -c '. "$1" && __load_completion jobcache && complete -p jobcache' _ "$loader" 2>&1) || true
    [[ "$spec" == *"-F _jobcache jobcache" ]] ||
        { echo "bash-completion does not load $comp with $prefix/share on XDG_DATA_DIRS: $spec" >&2; exit 1; }
fi

# As a subproject (add_subdirectory), static, without tests and examples.
out="$work/subproject"
cmake -S "$src/tests/subproject" -B "$out" -DJOBCACHE_SOURCE_DIR="$src" >/dev/null
cmake --build "$out" >/dev/null
(cd "$out" && ./consumer "$out/c.db")
echo "consumer: 4 installed builds, 2 without the dependencies' .pc files, the README recipe (rpath), the Python reader, the bash completion and 1 subproject build ok"
