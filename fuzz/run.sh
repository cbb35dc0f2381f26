#!/usr/bin/env bash
# Runs the fuzz targets one after another, each for SECONDS (default 600),
# and prints a table: target, runs (executions), seconds, result.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (no TARGET: every target)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). The targets are built once with `cargo +nightly fuzz build`
# (AddressSanitizer; FUZZ_SANITIZER=none builds without it). Each run is
# one libFuzzer job in one worker at nice 10. The committed seeds in
# fuzz/corpus/TARGET are read, never written: what the run finds grows
# fuzz/out/corpus/TARGET; a crashing input is kept in fuzz/artifacts/TARGET
# and the run's log in fuzz/out/log/TARGET.log. Exits 1 when a target
# crashed (or could not run), 2 on bad arguments.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
all=(overlay_registry snapshot criteria recipe query_selector set_expression checksums)

seconds=600
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
elif [[ $# -gt 0 && ! " ${all[*]} " == *" $1 "* ]]; then
    echo "run.sh: $1 is neither a number of seconds nor a target; targets: ${all[*]}" >&2
    exit 2
fi
if [[ $seconds -lt 1 ]]; then
    echo "run.sh: SECONDS must be at least 1" >&2
    exit 2
fi
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
for t in "${targets[@]}"; do
    if [[ ! " ${all[*]} " == *" $t "* ]]; then
        echo "run.sh: unknown target $t; targets: ${all[*]}" >&2
        exit 2
    fi
done

sanitizer=${FUZZ_SANITIZER:-address}
(cd "$here/.." && nice -n 10 cargo +nightly fuzz build -s "$sanitizer" >&2)
bin_dir="$here/target/x86_64-unknown-linux-gnu/release"

failed=0
rows=()
for t in "${targets[@]}"; do
    corpus="$here/out/corpus/$t"
    artifacts="$here/artifacts/$t"
    work="$here/out/work/$t"
    log="$here/out/log/$t.log"
    mkdir -p "$corpus" "$artifacts" "$work" "$(dirname "$log")"
    rm -f "$work"/fuzz-*.log
    echo "run.sh: $t for ${seconds}s" >&2
    start=$(date +%s)
    status=0
    # -jobs=1 runs the fuzzer in one child process whose output goes to
    # fuzz-0.log in the working directory.
    (cd "$work" && nice -n 10 "$bin_dir/$t" \
        -jobs=1 -workers=1 \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "$corpus" "$here/corpus/$t") >/dev/null 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    cat "$work"/fuzz-*.log > "$log" 2>/dev/null || true
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [[ $status -eq 0 ]]; then
        result=ok
    else
        failed=1
        crash=$(grep -o "$artifacts/[^ ]*" "$log" | tail -n 1 || true)
        result="CRASH ${crash:-(see $log)}"
    fi
    rows+=("$(printf '%-18s %12s %8s  %s' "$t" "${runs:-?}" "$elapsed" "$result")")
done

printf '%-18s %12s %8s  %s\n' TARGET RUNS SECONDS RESULT
printf '%s\n' "${rows[@]}"
exit $failed
