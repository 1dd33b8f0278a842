#!/usr/bin/env bash
# The shared library exports exactly the functions that include/jobcache.h
# declares with JC_EXPORT: nothing internal leaks, nothing documented is
# missing. Usage: exported_symbols.sh HEADER LIBRARY
set -euo pipefail
header="$1"
lib="$2"
documented=$(grep -E '^JC_EXPORT' "$header" | grep -oE '\bjc_[a-z0-9_]+\s*\(' | tr -d ' (' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sort -u)
if [ "$documented" != "$exported" ]; then
    echo "exported but not documented:"; comm -13 <(echo "$documented") <(echo "$exported")
    echo "documented but not exported:"; comm -23 <(echo "$documented") <(echo "$exported")
    exit 1
fi
echo "$(echo "$exported" | wc -l) exported symbols, all documented"
