"""Wall time of the visualization commands as a user runs them, torch import included.

Each command runs as a fresh ``python -m cnnlab ...`` process (so the time includes starting
Python, importing torch and building the model), median of --repeat runs, side by side with
the floor: a process that only imports torch and torchvision, builds the same torchvision
model and runs one forward pass, and a process that only imports torch (no command can start
faster). Targets (issue 8): ``viz features`` and ``viz attribute
--method gradcam`` on ResNet-50 at 224 under 3 s each, ``draw resnet152`` under 2 s.

    python benchmarks/viz_speed.py [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import torch, torchvision
m = torchvision.models.{model}().eval()
with torch.inference_mode():
    m(torch.zeros(1, 3, 224, 224))
"""


def wall(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": str(args.threads)}
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            (
                "viz features resnet50 (224)",
                3.0,
                [
                    py,
                    "-m",
                    "cnnlab",
                    "viz",
                    "features",
                    "resnet50",
                    "sample:china",
                    "-o",
                    f"{tmp}/f.png",
                ],
                "resnet50",
            ),
            (
                "viz attribute --method gradcam resnet50 (224)",
                3.0,
                [
                    py,
                    "-m",
                    "cnnlab",
                    "viz",
                    "attribute",
                    "resnet50",
                    "sample:china",
                    "--method",
                    "gradcam",
                    "-o",
                    f"{tmp}/a.png",
                ],
                "resnet50",
            ),
            (
                "draw resnet152 (svg)",
                2.0,
                [py, "-m", "cnnlab", "draw", "resnet152", "-o", f"{tmp}/r.svg"],
                "resnet152",
            ),
            (  # the layer table draw is built from; no target of its own (issue 2's was in-process)
                "summary resnet152 (json)",
                None,
                [py, "-m", "cnnlab", "summary", "resnet152", "--format", "json"],
                "resnet152",
            ),
        ]
        floors: dict[str, list[float]] = {}
        times: dict[str, list[float]] = {name: [] for name, *_ in cases}
        torch_only: list[float] = []
        for _ in range(args.repeat):  # interleaved: a busy neighbour slows every case alike
            torch_only.append(wall([py, "-c", "import torch"], env))
            for name, _target, cmd, model in cases:
                times[name].append(wall(cmd, env))
                if model not in floors or len(floors[model]) < len(times[name]):
                    floors.setdefault(model, []).append(
                        wall([py, "-c", FLOOR.format(model=model)], env)
                    )
    load = os.getloadavg()
    print(
        f"median of {args.repeat} runs, {args.threads} threads, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    t_torch = statistics.median(torch_only)
    print(f"`python -c 'import torch'` alone: {t_torch:.2f} s")
    print()
    print(
        "| command | cnnlab (s) | floor: import + build + 1 forward (s) | x floor | "
        "cnnlab - import torch (s) | target (s) | target / cnnlab |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, target, _cmd, model in cases:
        t = statistics.median(times[name])
        f = statistics.median(floors[model])
        verdict = "- | -"
        if target is not None:
            verdict = f"{target:.1f} | {target / t:.2f} {'met' if t < target else 'NOT met'}"
        print(
            f"| `cnnlab {name}` | {t:.2f} | {f:.2f} | {t / f:.2f} | {t - t_torch:.2f} | {verdict} |"
        )


if __name__ == "__main__":
    main()
