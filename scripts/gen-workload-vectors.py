#!/usr/bin/env python3
"""Regenerates the golden workload vectors in kv-core/tests/fixtures/.

The files were made by the course's reference generator (Go), which is not
part of this repository and needs a Go toolchain. This script is an
independent re-implementation of the algorithm as the course documents it
(/work/shared/workload/README.md, summarised below), written from that text,
not from kv-core's Rust code, so that kv-core's tests compare the Rust
generator against a second implementation rather than against a snapshot
of its own output. `kv-core/tests/workload_vectors.rs` checks that this
script reproduces every fixture byte for byte.

Algorithm: xorshift64 (<<13, >>7, <<17; seed 0 becomes 1); per op two draws,
key first, then read/write. Key: Gray et al.'s Zipfian over n = 1,000,000
records: zetan = sum_{i=1..n} 1/i^theta (summed in order, plain double
additions), zeta2 = 1 + 1/2^theta, alpha = 1/(1-theta),
eta = (1 - (2/n)^(1-theta)) / (1 - zeta2/zetan); u = draw / (2^64-1),
uz = u * zetan; key 0 if uz < 1, key 1 if uz < 1 + 0.5^theta, else
floor(n * (eta*u - eta + 1)^alpha), mod n. Get when the second draw is below
read_threshold = floor(p_read * 2^64) (saturated at 2^64-1), p_read 0.5 for
YCSB-A, 0.95 for YCSB-B, 1.0 for YCSB-C (every op a get; the reference's
YCSB-C overflow to 2^63 is deliberately not reproduced).

Usage: scripts/gen-workload-vectors.py [--out DIR]   (default: the fixtures dir)
"""

import argparse
import os

MASK = (1 << 64) - 1
RECORDS = 1_000_000
OPS = 100_000
READ_SHARE = {"YCSB-A": 0.5, "YCSB-B": 0.95, "YCSB-C": 1.0}
# (workload, theta, seed): the files the tests read.
VECTORS = [("YCSB-B", 0.99, 1), ("YCSB-A", 0.5, 42), ("YCSB-C", 0.99, 7)]


def xorshift64(seed):
    x = seed or 1
    while True:
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        yield x


def constants(theta, n=RECORDS):
    zetan = 0.0
    for i in range(1, n + 1):
        # Not sum(): Python 3.12's sum() compensates rounding; the
        # reference adds plain doubles in order.
        zetan += 1.0 / float(i) ** theta
    zeta2 = 1.0 + 1.0 / 2.0 ** theta
    alpha = 1.0 / (1.0 - theta)
    eta = (1.0 - (2.0 / float(n)) ** (1.0 - theta)) / (1.0 - zeta2 / zetan)
    return zetan, eta, alpha


def key_of(draw, theta, zetan, eta, alpha, n=RECORDS):
    u = float(draw) / float(MASK)
    uz = u * zetan
    if uz < 1.0:
        return 0
    if uz < 1.0 + 0.5 ** theta:
        return 1
    return int(float(n) * (eta * u - eta + 1.0) ** alpha) % n


def read_threshold(workload):
    return min(int(READ_SHARE[workload] * 2.0 ** 64), MASK)


def g17(x):
    return format(x, ".17g")


def write_vector(out_dir, workload, theta, seed):
    zetan, eta, alpha = constants(theta)
    threshold = read_threshold(workload)
    name = f"{workload.lower()}_theta{theta}_seed{seed}.csv"
    draws = xorshift64(seed)
    lines = [
        f"# workload={workload} theta={theta} seed={seed} records={RECORDS} "
        f"zetan={g17(zetan)} eta={g17(eta)} alpha={g17(alpha)} read_threshold={threshold}",
        "index,key,op",
    ]
    for i in range(OPS):
        key = key_of(next(draws), theta, zetan, eta, alpha)
        op = "get" if next(draws) < threshold else "put"
        lines.append(f"{i},{key},{op}")
    with open(os.path.join(out_dir, name), "w") as f:
        f.write("\n".join(lines) + "\n")
    return name


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "kv-core", "tests", "fixtures"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for workload, theta, seed in VECTORS:
        print(write_vector(args.out, workload, theta, seed))


if __name__ == "__main__":
    main()
