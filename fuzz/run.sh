#!/usr/bin/env bash
# Builds every fuzz target, runs each for FUZZ_SECONDS on its corpus in fuzz/corpus/,
# and prints a summary: executions, corpus size, crash or not. Called by `make fuzz`.
# Exit status 1 when any target found a crash (its input is in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
cargo_fuzz=${CARGO_FUZZ:-cargo-fuzz}
targets=${FUZZ_TARGETS:-$("$cargo_fuzz" list)}
# Release with debug assertions and overflow checks, like the unit tests; no sanitizer
# by default: the code under test is safe Rust, where a bug shows as a panic, and ASan
# slows every execution (FUZZ_SANITIZER=address turns it on).
flags=(-O -a --sanitizer "${FUZZ_SANITIZER:-none}")
logs=fuzz/target/logs
mkdir -p "$logs"

# Fuzz the dependency versions the functions ship with: start from the workspace's lock
# whenever it changed (cargo then adds only libfuzzer-sys and its few dependencies).
if [ ! -f fuzz/Cargo.lock ] || [ Cargo.lock -nt fuzz/Cargo.lock ]; then
    cp Cargo.lock fuzz/Cargo.lock
fi

# cargo-fuzz passes unstable rustc flags; the stable toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1
"$cargo_fuzz" build "${flags[@]}"

summary=()
failed=0
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="$logs/$t.log"
    echo "fuzz: $t for ${seconds}s"
    start=$(date +%s)
    status=0
    "$cargo_fuzz" run "${flags[@]}" "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    files=$(find "fuzz/corpus/$t" -type f | wc -l)
    kib=$(find "fuzz/corpus/$t" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s / 1024}')
    if [ "$status" -eq 0 ]; then
        result="no crash"
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="CRASH (exit $status) ${artifact:-see $log}"
        grep -m1 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /' || true
    fi
    summary+=("$(printf '%-16s %12s execs %5ss  corpus %5s files %6s KiB  %s' \
        "$t" "${execs:-?}" "$took" "$files" "$kib" "$result")")
done

echo
echo "fuzz summary (FUZZ_SECONDS=$seconds; logs in $logs/):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
