# Sourced by the test runners (tests/exec, gradcheck, stochastic, train
# run.sh): a PASS or FAIL line per test, with the test's log indented
# under a failure, and the summary "N passed, M failed".
pass=0 fail=0 failed=""

# result NAME OK LOG [VERBOSE]: OK 1 passes; LOG is shown on a failure, and
# on a pass too when VERBOSE is 1.
result() {
    if [ "$2" = 1 ]; then
        pass=$((pass + 1))
        echo "PASS: $1"
        if [ "${4:-0}" = 1 ]; then sed 's/^/    /' "$3"; fi
    else
        fail=$((fail + 1))
        failed="$failed $1"
        echo "FAIL: $1"
        sed 's/^/    /' "$3"
    fi
}

# summary: prints the counts; true when nothing failed.
summary() {
    echo "$pass passed, $fail failed"
    if [ -n "$failed" ]; then echo "failed:$failed"; fi
    [ "$fail" = 0 ]
}
