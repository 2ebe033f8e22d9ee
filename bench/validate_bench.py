"""Time and peak memory to load, validate and compile a large generated bundle."""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from gen_bundle import generate

from entitle.engine.bundle import load_policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--plans", type=int, default=1000)
    p.add_argument("--contracts", type=int, default=100_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bundle"
        generate(root, args.plans, args.contracts)
        start = time.perf_counter()
        policy, diagnostics = load_policy(root)
        elapsed = time.perf_counter() - start
    errors = [d for d in diagnostics if d.severity == "error"]
    assert policy is not None, errors[:5]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.plans} plans, {len(policy.contracts)} contracts: load+validate+compile "
        f"{elapsed:.2f} s, peak RSS {peak_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
