#!/usr/bin/env bash
# End-to-end CLI benchmark: generate N recipients (and as many outbound lines), load them into
# SQLite, then import the outbound file — wall time and peak RSS of every step, and the import's
# phases (read from the database, sandbox, database write) from its -v log.
# Usage: bench/cli_import.sh N [AUDLINK]   (AUDLINK defaults to target/release/audlink)
set -euo pipefail
N=${1:?N}
AUDLINK=${2:-$(pwd)/target/release/audlink}
DIR=$(pwd)/target/bench-cli-$N
rm -rf "$DIR" && mkdir -p "$DIR" && cd "$DIR"
run() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o time.txt "$AUDLINK" "$@" > out.txt 2> err.txt
  read -r secs kib < time.txt
  printf '%-18s %8.2f s  %7.0f MiB peak RSS\n' "$label" "$secs" "$(echo "$kib / 1024" | bc -l)"
}
run generate generate --out data --recipients "$N" --seed 1
run init init
run "recipients load" recipients load data/recipients.csv
run "visitors load" visitors load data/visitors.csv
run "audience import" -v audience import data/S3_1_iter_1767225600000.sync --datasource ecid
grep -o 'read_s=.*' err.txt | sed 's/^/  import phases: /'
grep -o 'copy_in_s=.*' err.txt | sed 's/^/  sandboxed call: /'
head -1 out.txt | sed 's/^/  /'
