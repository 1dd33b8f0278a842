#!/usr/bin/env bash
# Installs jobcache to a temporary prefix and builds and runs
# examples/consumer four ways: pkg-config and find_package, each against the
# shared and the static library. Usage: consumer.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1"
build="$2"
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
    if [ $linkage = static ] && ldd "$out/consumer" | grep -q libjobcache; then
        echo "pkg-config static build links libjobcache dynamically" >&2; exit 1
    fi
    (cd "$out" && LD_LIBRARY_PATH="$prefix/lib:$libdir/.." ./consumer "$out/c.db")

    out="$work/cmake-$linkage"
    flag=OFF; [ $linkage = static ] && flag=ON
    cmake -S "$src/examples/consumer" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_STATIC=$flag >/dev/null
    cmake --build "$out" >/dev/null
    if [ $linkage = static ] && ldd "$out/consumer" | grep -q libjobcache; then
        echo "find_package static build links libjobcache dynamically" >&2; exit 1
    fi
    if [ $linkage = shared ] && ! ldd "$out/consumer" | grep -q libjobcache.so.0; then
        echo "find_package shared build does not link libjobcache.so.0" >&2; exit 1
    fi
    (cd "$out" && ./consumer "$out/c.db")
done
# As a subproject (add_subdirectory), static, without tests and examples.
out="$work/subproject"
cmake -S "$src/tests/subproject" -B "$out" -DJOBCACHE_SOURCE_DIR="$src" >/dev/null
cmake --build "$out" >/dev/null
(cd "$out" && ./consumer "$out/c.db")
echo "consumer: 4 installed builds and 1 subproject build ok"
