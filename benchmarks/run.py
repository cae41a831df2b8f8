"""Benchmark pcframe's training steps against a hand-written pure-JAX reference ("the limit").

Sections (all by default, or a subset with ``--sections``):

- ``timing``: W0-W2, every variant's weights checked against the reference's
  after one step, then interleaved per-call times; the dispatch overhead of
  `pcframe.functional.jit` on 20 parameters; PCX when ``--pcx-python`` names
  an interpreter that has it (`pcx_compare.py`);
- ``ode``: W3, ODE inference (Heun + PID, Euler), solver steps and
  vector-field evaluations (`ode.py`);
- ``memory``: XLA's compiled memory of W2's step (`measure.memory_table`);
- ``compile``: first-call time of W1 at T=8 and T=128 (`scaling.compile_vs_T`);
- ``scaling``: time per step against T, depth and batch size (`scaling.scaling`).

Run ``python benchmarks/run.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from measure import Row, first_steps, guarded_table, measure_dispatch, memory_table, table
from ode import run_w3
from scaling import compile_vs_T, scaling
from timing import time_interleaved, timed
from variants import build_packaged, build_pcframe
from workloads import (
    WORKLOADS,
    Workload,
    batches,
    build_reference,
    build_reference_eqx,
    build_reference_guarded,
    initial_weights,
)

import pcframe as px

SECTIONS = ("timing", "ode", "memory", "compile", "scaling")
# (warm-up rounds, timed rounds) per workload, and other repetition counts, in quick and full mode
QUICK = {
    "W0": (3, 30),
    "W1": (3, 30),
    "W2": (1, 3),
    "W3": (2, 10),
    "dispatch": (200, 7),
    "compile": 1,
    "scale": (2, 10),
}
FULL = {
    "W0": (20, 1000),
    "W1": (20, 500),
    "W2": (2, 20),
    "W3": (5, 100),
    "dispatch": (2000, 31),
    "compile": 3,
    "scale": (5, 100),
}


def variants_for(w: Workload, weights) -> list:
    """The variants of a workload; W2 leaves out the equinox reference and the unrolled Python loop."""
    if w.name.startswith("W2"):
        return [
            build_reference(w, weights),
            build_reference_guarded(w, weights),
            build_pcframe(w, weights, True),
            build_packaged(w, weights),
        ]
    return [
        build_reference(w, weights),
        build_reference_guarded(w, weights),
        build_reference_eqx(w, weights),
        build_pcframe(w, weights, True),
        build_pcframe(w, weights, False),
        build_packaged(w, weights),
    ]


def run_workload(w: Workload, warmup: int, reps: int) -> list[Row]:
    """Build every variant, check agreement after one step (the timed first call), then time them interleaved."""
    data = batches(w)
    weights = initial_weights(w.sizes)
    for variant in (build_reference(w, weights), build_pcframe(w, weights, True)):  # process-wide one-time costs
        jax.block_until_ready(variant.step(*data[0]))
    variants = variants_for(w, weights)
    first, diffs = first_steps(variants, data[0], weights, w.name)
    times = time_interleaved(variants, data, warmup, reps)
    return [Row(w.name, v.name, times[v.name], first[v.name], diffs[v.name]) for v in variants]


def run_pcx(python: str, names: list[str], reps: dict) -> list[Row]:
    """PCX rows (and the reference measured in the same process) from `pcx_compare.py` run by `python`."""
    warmup, count = max(reps[n][0] for n in names), min(reps[n][1] for n in names)
    script = Path(__file__).with_name("pcx_compare.py")
    done = subprocess.run(
        [python, str(script), ",".join(names), str(warmup), str(count)],
        capture_output=True,
        text=True,
        cwd=script.parent,
    )
    if done.returncode != 0:
        print(f"PCX run failed:\n{done.stderr[-2000:]}")
        return []
    rows = []
    for result in json.loads(done.stdout):
        name = f"{result['workload']} (PCX env, jax {result['jax']})"
        for variant, times in result["times"].items():
            diff = None if variant.startswith("reference") else result["max_diff"]
            rows.append(Row(name, variant, times, result["first"][variant], diff))
    return rows


def environment(argv: Sequence[str], load_at_start: float) -> str:
    """Date, machine, versions and command, as one markdown paragraph."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.date.today().isoformat()}; {os.cpu_count()} CPU cores ({cpu}); "
        f"jax {jax.__version__} ({jax.default_backend()}), equinox {eqx.__version__}, optax {optax.__version__}, "
        f"diffrax {diffrax.__version__}, pcframe {px.__version__}, Python {platform.python_version()}; "
        f"1-min load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"command: `{' '.join(['python benchmarks/run.py', *argv])}`"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about two minutes in all)")
    parser.add_argument("--workloads", default="W0,W1,W2", help="comma-separated subset of W0,W1,W2 (timing)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--pcx-python", help="a Python interpreter with pcx 0.6.3 installed (its own venv)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.workloads.split(",") if n not in WORKLOADS]
    unknown += [s for s in args.sections.split(",") if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown workloads or sections {unknown}; choose from {list(WORKLOADS)} and {SECTIONS}")
    return args


def main(argv: Sequence[str]) -> None:
    """Run the chosen sections, then print the environment line and the tables."""
    args = parse_args(argv)
    sections = args.sections.split(",")
    reps = QUICK if args.quick else FULL
    load_at_start = os.getloadavg()[0]
    timed(lambda: jax.jit(lambda a: a + 1)(jnp.zeros(3)))
    tables: list[tuple[str, str]] = []
    if "timing" in sections:
        rows: list[Row] = []
        for name in args.workloads.split(","):
            print(f"{name}: {WORKLOADS[name].description}")
            rows += run_workload(WORKLOADS[name], *reps[name])
        rows += measure_dispatch(*reps["dispatch"])
        if args.pcx_python:
            rows += run_pcx(args.pcx_python, [n for n in args.workloads.split(",") if n != "W2"], reps)
        else:
            print("PCX not run: it pins jax<0.5; install pcx==0.6.3 in its own venv and pass --pcx-python")
        tables.append(("Per-call time", table(rows)))
        tables.append(("Packaged step against the guarded reference", guarded_table(rows)))
    if "ode" in sections:
        print("W3: ODE inference")
        try:
            import jpc  # noqa: F401

            print("JPC is installed, but W3 compares with the hand-written diffrax step only")
        except ImportError:
            print("JPC not installed (jpc is not on this package index): compared with a hand-written diffrax step")
        ode_rows, steps = run_w3(*reps["W3"], quick=args.quick)
        tables += [("W3 ode: per-call time", table(ode_rows)), ("W3 ode: solver steps and evaluations", steps)]
    if "memory" in sections:
        w = WORKLOADS["W2"]
        weights = initial_weights(w.sizes)
        variants = [build_reference(w, weights), build_pcframe(w, weights, True), build_packaged(w, weights)]
        tables.append(("W2 compiled memory (XLA memory analysis)", memory_table(w.name, variants, batches(w, 1)[0])))
    if "compile" in sections:
        tables.append(("W1 first call against T", compile_vs_T((8, 128), reps["compile"])))
    if "scaling" in sections:
        tables.append(("W1 scaling", scaling(*reps["scale"])))
    print()
    print(environment(argv, load_at_start))
    for title, text in tables:
        print(f"\n### {title}\n\n{text}")


if __name__ == "__main__":
    main(sys.argv[1:])
