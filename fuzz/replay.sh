#!/usr/bin/env bash
# Runs every fuzz target once on each input of its corpus (fuzz/corpus/<target>/) and on
# every published sample and sample event (tests/fixtures/samples/, events/), so that a
# target that no longer compiles against the library, or whose property a real input
# breaks, fails `make test`. Stable toolchain, no instrumentation: libFuzzer only replays
# the inputs here (-runs=0); `make fuzz` is what explores. Exit status non-zero on the
# first failure, with the target's output.
set -euo pipefail
cd "$(dirname "$0")/.."

# --locked: the targets replay the dependency versions fuzz/Cargo.lock pins; when the
# library gains a dependency, refresh it as `make fuzz` does (cp Cargo.lock fuzz/).
if ! cargo build -q --locked --manifest-path fuzz/Cargo.toml --bins --target-dir target; then
    echo "fuzz-replay: the fuzz targets do not build (see above); a stale lock is refreshed by" \
        "cp Cargo.lock fuzz/Cargo.lock && cargo update -w --manifest-path fuzz/Cargo.toml" >&2
    exit 1
fi

logs=target/fuzz-replay
mkdir -p "$logs"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^rollgate-fuzz$')
[ -n "$targets" ] || { echo "fuzz-replay: no target found in fuzz/Cargo.toml" >&2; exit 1; }
for t in $targets; do
    inputs=("fuzz/corpus/$t" tests/fixtures/samples events)
    count=$(find "${inputs[@]}" -type f | wc -l)
    if ! "target/debug/$t" -runs=0 -artifact_prefix="$logs/$t-" "${inputs[@]}" >"$logs/$t.log" 2>&1; then
        tail -40 "$logs/$t.log" >&2
        echo "fuzz-replay: $t failed on one of its $count inputs (log: $logs/$t.log)" >&2
        exit 1
    fi
    echo "fuzz-replay: $t ran its $count inputs"
done
