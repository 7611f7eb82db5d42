"""Run every benchmark (make bench): each writes bench/results/<name>.json and prints a table.

Usage: python bench/run.py [name ...]   (names: mc exact ground dask study mc_gpu reweight ladder)
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALL = ("mc", "exact", "ground", "dask", "study", "mc_gpu", "reweight", "ladder")


def main() -> int:
    names = sys.argv[1:] or list(ALL)
    bad = [n for n in names if n not in ALL]
    if bad:
        print(f"unknown benchmark {bad[0]!r}; allowed: {', '.join(ALL)}", file=sys.stderr)
        return 2
    rc = 0
    for n in names:
        script = HERE / f"bench_{n}.py"
        print(f"=== {script.name}", flush=True)
        rc |= subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
    return rc


if __name__ == "__main__":
    sys.exit(main())
