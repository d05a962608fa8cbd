# The closing line of `make test`: passed, failed and skipped tests summed over nextest's
# summary ("Summary [ 1.2s] 449 tests run: 448 passed (1 slow), 1 failed, 3 skipped"; timed
# out tests count as failed) and libtest's "test result:" lines (the doctests; ignored ones
# count as skipped).
/^ *Summary \[/ && / tests? run: / {
    sub(/.* tests? run: /, "")
    n = split($0, parts, ", ")
    for (k = 1; k <= n; k++) {
        count = parts[k] + 0
        if (parts[k] ~ /^[0-9]+ passed/) p += count
        else if (parts[k] ~ /fail|timed out/) f += count
        else if (parts[k] ~ /^[0-9]+ skipped/) i += count
    }
}
/^test result:/ { p += $4; f += $6; i += $8 }
END { printf "%d passed, %d failed, %d skipped\n", p, f, i }
