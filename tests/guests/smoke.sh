#!/usr/bin/env bash
# Smoke test of the test guests WITHOUT Ferry: each `smoke` build (PL011 console,
# linked at 0x40200000) boots directly at EL1 on `qemu-system-aarch64 -M virt`, whose
# built-in PSCI (HVC conduit) stands in for Ferry's. Judged by the console output only
# (SYSTEM_OFF and SYSTEM_RESET both end QEMU with 0 under -no-reboot).
# Usage: tests/guests/smoke.sh [BIN_DIR]   (default build/guests-smoke; `make guest-smoke`)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${1:-build/guests-smoke}
qemu=${QEMU:-qemu-system-aarch64}
logdir=build/test-logs/guest-smoke
mkdir -p "$logdir"
passed=0 failed=0

# case NAME GUEST SMP APPEND EXPECTED...
case_() {
    local name=$1 guest=$2 smp=$3 append=$4; shift 4
    local log=$logdir/$name.log
    timeout 30 "$qemu" -M virt -cpu cortex-a53 -m 1G -smp "$smp" \
        -kernel "$bin/$guest.bin" -append "$append" \
        -display none -monitor none -serial stdio -no-reboot >"$log" 2>&1 </dev/null
    local rc=$? missing=()
    for want in "$@"; do
        grep -qF -- "$want" "$log" || missing+=("$want")
    done
    if [ "$rc" -eq 0 ] && [ ${#missing[@]} -eq 0 ]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: qemu exit $rc; missing: ${missing[*]:-(none)}"
        sed 's/^/  | /' "$log" | tail -n 20
        failed=$((failed + 1))
    fi
}

case_ hello hello 2 "name=smoke wait=300" \
    "hello from smoke on vCPU 0, 2 vCPUs, memory [0x40000000, 0x80000000)" \
    "smoke: 200 ms" "smoke: waited 300 ms" "smoke: SYSTEM_OFF"
case_ smp smp 4 "" "vCPU 1 up" "vCPU 2 up" "vCPU 3 up" "vCPU 3: CPU_OFF" "smp: 4 vCPUs ok"
case_ cpu-on-foreign cpu-on-foreign 2 "" "CPU_ON(0x80000003) = -2 (INVALID_PARAMETERS) ok" \
    "cpu-on-foreign: all 8 checks passed"
# No stage 2 without Ferry: the access goes through, and the guest says so.
case_ trespass-unstopped trespass 1 "target=0x09010000 access=read" \
    "trespass: touching 0x9010000 (read)" "trespass: access was NOT stopped"
# Outside QEMU's RAM and devices: an external abort, taken by the guest's own vector.
case_ guest-vector trespass 1 "target=0xa0000000" \
    "guest exception on vCPU 0: synchronous from EL1h: ESR_EL1=0x96000010 (EC 0x25)" \
    "FAR_EL1=0xa0000000"
case_ victim victim 1 "wait=100" "victim: pattern written to [" "victim: memory intact"
case_ bad-bootarg hello 1 "wait=soon" 'FAIL: bootarg wait="soon" is not a number'

echo "guest smoke: $passed passed, $failed failed (logs in $logdir/)"
[ "$failed" -eq 0 ]
