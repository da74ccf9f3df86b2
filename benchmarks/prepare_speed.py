"""How long `tp prepare` takes per dataset (read, verify the checksum, filter, index, write). Prints a table.

    python benchmarks/prepare_speed.py --raw ../shared/data [--datasets ml1m music game movietweetings]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tplib.data.prepare import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", required=True, help="the raw-data folder (as tp prepare --raw)")
    ap.add_argument("--datasets", nargs="+", default=["ml1m", "music", "game", "movietweetings"])
    args = ap.parse_args()
    print("| dataset | users | items | interactions | prepare s |")
    print("|---|---|---|---|---|")
    for name in args.datasets:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            ds = prepare(name, Path(args.raw), Path(out))
            s = time.perf_counter() - t0
        print(f"| {name} | {ds.n_users:,} | {ds.n_items:,} | {ds.n_interactions:,} | {s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
