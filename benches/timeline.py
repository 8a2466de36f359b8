"""Reads what `benches/transfer.sh --timeline DIR` wrote and prints, for each try, how busy each
server was in windows of a few seconds: requests at it (mean), the share of the window with at
least one, and the CPU cores its processes used. A window where a server has nothing to do while
the other is not using the box either is where a job waits.

    python3 benches/timeline.py DIR [--window SECONDS]
"""

import argparse
import bisect
import os


def read(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            parts = line.split("\t")
            try:
                rows.append([float(x) for x in parts])
            except ValueError:
                continue  # a line cut by a kill
    rows.sort(key=lambda r: r[0])
    return rows


def at(rows, t):
    """The last row at or before time t (ms), or None."""
    i = bisect.bisect_right(rows, t, key=lambda r: r[0])
    return rows[i - 1] if i else None


def delta(rows, t0, t1, col):
    a, b = at(rows, t0), at(rows, t1)
    if a is None or b is None or b[col] < a[col]:
        return None  # no sample yet, or a restarted proxy (a fresh destination)
    return b[col] - a[col]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--window", type=float, default=10.0)
    args = ap.parse_args()
    src, dst = read(f"{args.dir}/proxy-src.tsv"), read(f"{args.dir}/proxy-dst.tsv")
    cpu = read(f"{args.dir}/cpu.tsv")
    hz = os.sysconf("SC_CLK_TCK")
    with open(f"{args.dir}/tries.tsv") as f:
        tries = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for label, begin, end in tries:
        begin, end = float(begin), float(end)
        print(f"\n== {label}: {(end - begin) / 1000:.1f} s")
        print("   t(s)  src: in flight  >=1   cores | dst: in flight  >=1   cores | box idle")
        w = args.window * 1000
        t = begin
        while t < end:
            t1 = min(t + w, end)
            span = t1 - t
            cells = []
            idle = 2.0
            for rows, col in ((src, 1), (dst, 2)):
                flight = delta(rows, t, t1, 5)
                busy = delta(rows, t, t1, 3)
                # cpu.tsv's ticks: source in column 1, destination in column 2
                ticks = delta(cpu, t, t1, col)
                cores = ticks / hz / (span / 1000) if ticks is not None else None
                if cores is not None:
                    idle -= cores
                cells.append(
                    (
                        f"{flight / span:9.1f}" if flight is not None else "        -",
                        f"{100 * busy / span:4.0f}%" if busy is not None else "    -",
                        f"{cores:6.2f}" if cores is not None else "     -",
                    )
                )
            (a1, a2, a3), (b1, b2, b3) = cells
            print(f"  {(t - begin) / 1000:5.0f}  {a1}      {a2} {a3} | {b1}      {b2} {b3} | {idle:5.2f}")
            t = t1


if __name__ == "__main__":
    main()
