"""Generate docs/experiments.md from experiment run folders.

    python docs/make_experiments.py RUNS_ROOT      (default: runs/experiments-quick)

Reads RUNS_ROOT/<name>/result.json (written by ``cnnlab experiment NAME``), copies each plot to
docs/experiments/<name>.png and writes the results table, each conclusion and each plot into
docs/experiments.md. Nothing in the page is typed by hand except the introduction below.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
INTRO = """# Experiments: the lectures' claims, measured

`cnnlab experiment NAME [--quick]` turns one claim of the lecture notes into a measurement with
cnnlab's own trainer and zoo (small nets with one knob per claim: `lecture_cnn`,
`lecture_resnet`), and leaves a run folder with `result.json`, `result.csv`, a plot and
`conclusion.md`. `cnnlab experiment --list` lists them. This page is generated from the run
folders by `docs/make_experiments.py`; the numbers are whatever the runs measured, including
where a claim did **not** reproduce at the small scale a 2-core CPU allows in minutes.

How to read it: each experiment ran once (seed 0) with `--quick` on one thread of the shared
2-core CPU while other sessions' jobs ran (load average 4-7; benchmarks/RESULTS.md has the load
of each run), so the wall times are longer than an idle machine gives. At this scale a
difference of about a point is within seed-to-seed noise; the verdict
column is the experiment's own rule (in its module in `src/cnnlab/teaching/experiments/`),
applied to the measured numbers. "At full scale" in each section says what would change.

Reproduce one: `cnnlab experiment lrn --quick --data-dir ../shared/data` (the digits-based ones
need no data folder).
"""


def main(root: str = "runs/experiments-quick") -> None:
    root = Path(root)
    results = []
    for folder in sorted(p for p in root.iterdir() if (p / "result.json").is_file()):
        results.append((folder, json.loads((folder / "result.json").read_text())))
    if not results:
        sys.exit(f"no run folders with result.json under {root}")
    from cnnlab.teaching.experiments import EXPERIMENTS

    order = {n: i for i, n in enumerate(EXPERIMENTS)}
    results.sort(key=lambda fr: order.get(fr[1]["experiment"], 99))
    out = DOCS / "experiments"
    out.mkdir(exist_ok=True)
    lines = [
        INTRO,
        "## Results",
        "",
        "| experiment | data (quick) | wall | verdict | finding |",
        "|---|---|---|---|---|",
    ]
    for _, r in results:
        data = r["scale_text"].split(";")[0]
        lines.append(
            f"| [{r['experiment']}](#{r['experiment']}) | {data} | "
            f"{r['wall_seconds']:.0f} s | **{r['verdict']}** | {r['finding']} |"
        )
    lines.append("")
    missing = [n for n in EXPERIMENTS if n not in {r["experiment"] for _, r in results}]
    if missing:
        lines += [f"Not run for this page: {', '.join(missing)}.", ""]
    for folder, r in results:
        name = r["experiment"]
        shutil.copyfile(folder / r["plot"], out / f"{name}.png")
        text = (folder / "conclusion.md").read_text()
        text = text.replace(f"# Experiment `{name}`", f"## {name}", 1)
        text = text.replace(f"]({r['plot']})", f"](experiments/{name}.png)")
        lines += [text.rstrip(), ""]
    (DOCS / "experiments.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {DOCS / 'experiments.md'} from {len(results)} run folder(s)")


if __name__ == "__main__":
    main(*sys.argv[1:])
