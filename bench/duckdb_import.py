#!/usr/bin/env python3
"""The import benchmark's work done in DuckDB, on the files `--write DIR` of the bench wrote.

Reads the visitor links and the outbound audience file, validates the ids (38 digits), picks
one recipient per visitor id (latest link wins, ties to the smallest recipient), joins, and
counts distinct recipients per segment — what audlink's import computes. Prints the seconds
and the per-segment counts' checksum so both tools can be compared on the same input.

usage: bench/duckdb_import.py DIR [THREADS]
"""
import sys
import time

import duckdb

directory = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2

con = duckdb.connect()
con.execute(f"SET threads = {threads}")
query = f"""
WITH links AS (
    SELECT recipient_id, TRY_CAST(visitor_id AS HUGEINT) AS visitor, last_seen
    FROM read_csv('{directory}/links.csv', header = true,
                  columns = {{'recipient_id': 'BIGINT', 'visitor_id': 'VARCHAR', 'last_seen': 'BIGINT'}})
    WHERE length(visitor_id) = 38 AND regexp_full_match(visitor_id, '[0-9]{{38}}')
),
best AS (
    SELECT visitor, arg_max(recipient_id, last_seen * 4294967296 - recipient_id) AS recipient_id
    FROM links GROUP BY visitor
),
audience AS (
    SELECT uuid, string_split(segments, ',') AS segs
    FROM read_csv('{directory}/S3_1_iter_1700000000000.sync', delim = ' ', header = false,
                  columns = {{'uuid': 'VARCHAR', 'segments': 'VARCHAR'}})
),
units AS (
    SELECT TRY_CAST(uuid AS HUGEINT) AS visitor, unnest(segs) AS segment
    FROM audience
    WHERE length(uuid) = 38 AND regexp_full_match(uuid, '[0-9]{{38}}')
)
SELECT segment, count(DISTINCT b.recipient_id) AS recipients
FROM units u JOIN best b ON b.visitor = u.visitor
GROUP BY segment ORDER BY segment
"""
start = time.perf_counter()
rows = con.execute(query).fetchall()
elapsed = time.perf_counter() - start
pairs = sum(r[1] for r in rows)
print(f"duckdb {duckdb.__version__}, {threads} threads: {elapsed:.3f} s, {len(rows)} segments, "
      f"{pairs} distinct (segment, recipient) pairs")
try:
    with open(f"{directory}/audlink.txt") as f:
        audlink_seconds, audlink_pairs = f.read().split()
    same = "same result" if int(audlink_pairs) == pairs else f"DIFFERENT result (audlink {audlink_pairs})"
    print(f"audlink / duckdb ({threads} threads) = {float(audlink_seconds) / elapsed:.2f} "
          f"({float(audlink_seconds):.3f} s / {elapsed:.3f} s), {same}")
except FileNotFoundError:
    pass
