#!/usr/bin/env python3
"""Runs import benchmark binaries alternately on the same files and prints, per phase, the best
wall time, the best time in user space (on a CPU minus in the kernel) and the fresh memory
faulted in (where the build prints it: the same every run) of each.

On a shared or virtualized machine a single run says little: the page faults of fresh memory and
other tenants swing the wall time by a third. Builds compared this way, run after run on the
same data, differ by what their code does.

usage: bench/import_ab.py DIR N BINARY [BINARY ...] [--runs R] [--trim]

DIR holds the files `--write DIR` wrote for N lines; each BINARY is a build of
core/benches/import.rs (`cargo bench -p audlink-core --features gen --bench import --no-run`
prints its path; copy it aside before building the other version). `--trim` is passed on:
freed memory goes back to the kernel, as glibc does by default.
"""
import re
import subprocess
import sys
from collections import defaultdict

args = sys.argv[1:]
runs = 4
if "--runs" in args:
    i = args.index("--runs")
    runs = int(args[i + 1])
    del args[i : i + 2]
extra = []
if "--trim" in args:
    args.remove("--trim")
    extra.append("--trim")
if len(args) < 3:
    sys.exit(__doc__)
directory, n, binaries = args[0], args[1], args[2:]

PHASES = [("parse links", "links"), ("number+index", "index"), ("read+probe+agg", "probe"), ("total", "total")]
best = defaultdict(lambda: defaultdict(lambda: (float("inf"), float("inf"))))
faulted = defaultdict(dict)
for _ in range(runs):
    for binary in binaries:
        out = subprocess.run([binary, n, "--read", directory, *extra], capture_output=True, text=True, check=True).stdout
        for name, key in PHASES:
            m = re.search(re.escape(name) + r"\s+([\d.]+) s\s+([\d.]+) s\s+([\d.]+) s(?:\s+(\d+) MiB)?", out)
            if m:
                wall, cpu, kernel = map(float, m.groups()[:3])
                if m.group(4):
                    faulted[binary][key] = int(m.group(4))
                old_wall, old_user = best[binary][key]
                best[binary][key] = (min(old_wall, wall), min(old_user, cpu - kernel))
for binary in binaries:
    cells = [
        f"{key} {wall:.3f} s ({user:.3f} s user"
        + (f", {faulted[binary][key]} MiB faulted" if key in faulted[binary] else "")
        + ")"
        for key, (wall, user) in best[binary].items()
    ]
    print(f"{binary}: " + ", ".join(cells))
