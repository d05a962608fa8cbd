#!/usr/bin/env bash
# `audlink sync --once` against `audience import` of the same outbound file: generate N
# recipients (and as many outbound lines), load them, copy the database, then import the file
# directly in one copy and through an import job (local-folder exchange) in the other — wall
# time and peak RSS of each, and the lists compared. A second `sync --once` (nothing new) shows
# the cost of a run that only lists and skips.
# Usage: bench/sync.sh N [AUDLINK]   (AUDLINK defaults to target/release/audlink)
set -euo pipefail
N=${1:?N}
AUDLINK=${2:-$(pwd)/target/release/audlink}
DIR=$(pwd)/target/bench-sync-$N
rm -rf "$DIR" && mkdir -p "$DIR" && cd "$DIR"
OUTBOUND=S3_1_iter_1767225600000.sync
run() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o time.txt "$AUDLINK" "$@" > out.txt 2> err.txt
  read -r secs kib < time.txt
  printf '%-22s %8.2f s  %7.0f MiB peak RSS\n' "$label" "$secs" "$(echo "$kib / 1024" | bc -l)"
}
{
  "$AUDLINK" -q generate --out data --recipients "$N" --seed 1
  "$AUDLINK" -q init
  "$AUDLINK" -q recipients load data/recipients.csv
  "$AUDLINK" -q visitors load data/visitors.csv
  # Compiles the sandbox's module into the on-disk cache, so neither timed run pays for it.
  "$AUDLINK" -q segment preview true --sample 0
} > /dev/null
cp audlink.db direct.db
cat >> audlink.toml <<TOML

[[job]]
name = "platform-in"
kind = "import"
every = "15m"
datasource = "ecid"
prefix = "outbound/"
TOML
mkdir -p exchange/outbound && cp "data/$OUTBOUND" exchange/outbound/
run "audience import" --db direct.db audience import "data/$OUTBOUND" --datasource ecid
run "sync --once (new)" sync --once
run "sync --once (nothing)" sync --once
grep -q '0 imported, 1 skipped' out.txt || { echo "the second run imported again" >&2; exit 1; }
for db in direct.db audlink.db; do
  "$AUDLINK" --db "$db" --json list ls > "lists-$db.json"
done
cmp -s lists-direct.db.json lists-audlink.db.json && echo "lists: identical" || { echo "lists differ" >&2; exit 1; }
