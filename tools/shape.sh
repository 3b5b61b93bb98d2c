#!/bin/sh
# tools/shape.sh [LIB]: the figures issue 14 sets goals for, from the
# source in src/ (and the archive LIB, default build/libherd.a, if built):
# the largest files, functions over 60 lines, the share of functions of at
# most 30 lines, and exported names other than herd_*.
# A function runs from the first line of its signature to its closing
# brace, both at column 0 (the repo's clang-format style).
# With --check it exits 1 when a goal is missed.
set -eu
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then
	check=1
	shift
fi
lib=${1:-build/libherd.a}
fail=0

echo "largest files in src/:"
wc -l src/*.c src/*.h | grep -v ' total$' | sort -rn | head -5
largest=$(wc -l src/*.c src/*.h | grep -v ' total$' | sort -rn | head -1 |
	awk '{print $1}')
master=$(wc -l <src/master.c)
[ "$largest" -le 600 ] || fail=1
[ "$master" -le 400 ] || fail=1

awk '
FNR == 1 { sig = ""; infn = 0 }
!infn && /^[A-Za-z_]/ && !/;[ \t]*$/ && !/^(struct|enum|union|typedef)[^(]*[{;=]?[ \t]*$/ {
	if (sig == "") start = FNR
	sig = sig " " $0
	next
}
!infn && /^[ \t]/ && sig != "" { sig = sig " " $0; next }
!infn && /^\{/ && sig != "" {
	infn = 1
	s = sig
	sub(/\(.*/, "", s)
	n = split(s, a, /[^A-Za-z0-9_]+/)
	name = a[n]
	next
}
!infn { sig = "" }
infn && /^\}/ {
	len = FNR - start + 1
	total++
	if (len <= 30) short++
	if (len > 60) { long++; printf "  %s %s: %d lines\n", FILENAME, name, len }
	infn = 0
	sig = ""
}
END {
	printf "functions over 60 lines: %d\n", long
	printf "functions of at most 30 lines: %d of %d (%.1f%%)\n", short, total, 100.0 * short / total
	exit long > 0
}' src/*.c || fail=1

if [ -f "$lib" ]; then
	others=$(nm -g --defined-only "$lib" 2>/dev/null |
		awk 'NF == 3 && $3 !~ /^herd_/ { print $3 }' | sort -u)
	count=$(printf '%s' "$others" | grep -c . || true)
	echo "exported names other than herd_*: $count"
	[ "$count" -eq 0 ] || fail=1
	data=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[BDGS]/ { print $3 }')
	[ -z "$data" ] || { echo "exported data: $data"; fail=1; }
fi
if [ "$check" = 1 ]; then
	exit "$fail"
fi
