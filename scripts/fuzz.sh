#!/usr/bin/env bash
# Fuzzes statuslab's parsers for longer than the normal test run does, in two stages:
#
#  1. The property tests, in release mode, with PROPTEST_CASES cases each (default 100000):
#     every `props` module (one next to each parser: wire::h1, content::{range, params,
#     negotiate}, store::precondition, edge::auth, routes::{on_demand, sequences, resources})
#     and wire::framing's own property tests. The name filters are `props` and
#     `wire::framing::tests`, so one family alone is e.g.
#       PROPTEST_CASES=100000 cargo test -p statuslab-server --release --lib content::range::props
#  2. If a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`) are installed, every
#     cargo-fuzz target in fuzz/ (or those named as arguments) for FUZZ_SECONDS seconds each
#     (default 60), starting from fuzz/seeds/TARGET (committed) and fuzz/corpus/TARGET (kept
#     between runs, not committed). Crashes land in fuzz/artifacts/TARGET/; reproduce one with
#       cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
#
# Prints the cases and iterations run and exits non-zero on any failure.
#
# Usage: scripts/fuzz.sh [TARGET...]
# Environment: PROPTEST_CASES (default 100000), FUZZ_SECONDS (default 60), FUZZ_SANITIZER
# (address, or none for more iterations; default address), SKIP_PROPS=1, SKIP_CARGO_FUZZ=1.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=${PROPTEST_CASES:-100000}
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()

if [[ ${SKIP_PROPS:-0} != 1 ]]; then
    echo "== property tests: PROPTEST_CASES=$cases (filters: props, wire::framing::tests)"
    started=$SECONDS
    if PROPTEST_CASES=$cases cargo test -p statuslab-server --release --lib \
        -- props wire::framing::tests 2>&1 | tee "$logs/props.log"; then
        status=ok
    else
        status=FAILED
        failed+=(property-tests)
    fi
    # Every test in a `props` module is a proptest; so are framing's named below.
    props=$(grep -cE '^test .*::props::.* \.\.\. ok$' "$logs/props.log" || true)
    framing=$(grep -cE '^test wire::framing::tests::(segmentation_invariance|valid_bodies_round_trip|accepted_trailers_agree|framing_is_total|transfer_coding_lists|content_length_round_trips).* \.\.\. ok$' "$logs/props.log" || true)
    echo "== property tests $status in $((SECONDS - started)) s: $((props + framing)) property tests passed ($props in props modules, $framing in wire::framing), $cases cases each: $(((props + framing) * cases)) cases"
fi

if [[ ${SKIP_CARGO_FUZZ:-0} == 1 ]]; then
    echo "== cargo-fuzz skipped (SKIP_CARGO_FUZZ=1)"
elif ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "== cargo-fuzz skipped: no nightly toolchain (rustup toolchain install nightly)"
elif ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== cargo-fuzz skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
else
    targets=("$@")
    if [[ ${#targets[@]} -eq 0 ]]; then
        mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
    fi
    # Debug assertions on: integer overflow panics instead of wrapping silently.
    echo "== cargo-fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
    cargo +nightly fuzz build --sanitizer "$sanitizer" --debug-assertions
    summary=()
    for t in "${targets[@]}"; do
        echo "== cargo-fuzz: $t for ${seconds} s"
        mkdir -p "fuzz/corpus/$t"
        corpora=("fuzz/corpus/$t")
        [[ -d fuzz/seeds/$t ]] && corpora+=("fuzz/seeds/$t")
        if cargo +nightly fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" "${corpora[@]}" -- \
            -max_total_time="$seconds" -print_final_stats=1 >"$logs/$t.log" 2>&1; then
            status=ok
        else
            status=FAILED
            failed+=("fuzz:$t")
            tail -n 60 "$logs/$t.log"
        fi
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' | tail -n 1 || true)
        cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+' "$logs/$t.log" | tail -n 1 | grep -oE 'cov: [0-9]+' || true)
        summary+=("$(printf '%-14s %-6s %12s executions  %s' "$t" "$status" "${runs:-?}" "$cov")")
        echo "${summary[-1]}"
    done
    echo "== cargo-fuzz summary (${seconds} s each)"
    printf '%s\n' "${summary[@]}"
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== fuzzing passed"
