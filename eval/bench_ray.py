"""Ray scaling on this machine: the same offers through `tagsmith batch` with 1 and 2 actors
and through single-process `tagsmith tag`, run as a user runs them (one fresh process each).

    python eval/bench_ray.py [--n 120] [--engine auto] [--actors 1,2] [--data PATH] [--keep DIR]

For each run it prints the wall time, the steady rate (items/s from the first result written to
the last, so engine start-up is left out: it is paid once per actor however long the job), and
how many items got the same tags as single-process tagging. A benchmark, not a test: minutes
per run on a CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared/data/wdc-pave/wdc_with_all_attributes_normalized/train_large.jsonl"
TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))


def watch(output: Path, stop: threading.Event, seen: list[tuple[float, int]]) -> None:
    """Record (time, lines written) whenever the output grows."""
    last = 0
    while not stop.is_set():
        n = len(output.read_text().splitlines()) if output.exists() else 0
        if n != last:
            seen.append((time.perf_counter(), n))
            last = n
        time.sleep(0.5)


def run(command: list[str], output: Path) -> dict[str, float]:
    seen: list[tuple[float, int]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(output, stop, seen), daemon=True)
    started = time.perf_counter()
    watcher.start()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    stop.set()
    watcher.join()
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    total = len(output.read_text().splitlines())
    seen.append((started + wall, total))
    (t0, n0), (t1, n1) = seen[0], seen[-1]
    steady = (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else float("nan")
    return {"wall_s": wall, "items": total, "steady_items_per_s": steady}


def tags(path: Path) -> dict[str, str]:
    return {str(r["id"]): json.dumps(r["tags"], sort_keys=True)
            for r in (json.loads(line) for line in path.read_text().splitlines() if line.strip())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="offers (the first N of the data file)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--actors", default="1,2", help="actor counts to run, comma-separated")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs in this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    folder.mkdir(parents=True, exist_ok=True)
    items = folder / "offers.jsonl"
    items.write_text("".join(args.data.read_text().splitlines(keepends=True)[:args.n]))
    common = ["--vocab", "wdc-pave", "--engine", args.engine, "--no-progress"]
    one = folder / "single.jsonl"
    rows = {"single process": run([TAGSMITH, "tag", "-i", str(items), "-o", str(one), *common], one)}
    reference = tags(one)
    for actors in (int(a) for a in args.actors.split(",")):
        out = folder / f"ray-{actors}.jsonl"
        name = f"ray, {actors} actor{'s' if actors > 1 else ''}"
        rows[name] = run([TAGSMITH, "batch", str(items), "-o", str(out), "--actors", str(actors), *common], out)
        got = tags(out)
        rows[name]["same_tags"] = sum(got.get(k) == v for k, v in reference.items())
    print(f"{args.n} offers of {args.data.name}, engine {args.engine}, outputs in {folder}")
    print("| run | wall s | items/s after the first result | same tags as single process |\n|---|---|---|---|")
    for name, r in rows.items():
        same = f"{int(r['same_tags'])}/{len(reference)}" if "same_tags" in r else "-"
        print(f"| {name} | {r['wall_s']:.0f} | {r['steady_items_per_s']:.2f} | {same} |")
    counts = [k for k in rows if k.startswith("ray")]
    if len(counts) >= 2:
        a, b = rows[counts[0]], rows[counts[-1]]
        print(f"steady rate {counts[-1]} / {counts[0]}: {b['steady_items_per_s'] / a['steady_items_per_s']:.2f}; "
              f"wall {a['wall_s'] / b['wall_s']:.2f}")


if __name__ == "__main__":
    main()
