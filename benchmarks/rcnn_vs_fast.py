"""R-CNN against Fast R-CNN on the generated digits-det set, one run, side by side (seed 004).

Both detectors share the proposals (selective search), the CNN body and the head; R-CNN runs
the body on every warped proposal, Fast R-CNN once per image with RoI pooling. Prints mAP and
CNN time per test image for each, the ratio, and the time against the number of proposals;
writes the run folder (results.json, rcnn_vs_fast.png). See
cnnlab.teaching.experiments.rcnn_vs_fast for the protocol.

    .venv/bin/python benchmarks/rcnn_vs_fast.py [--train 600 --test 200 --epochs 6] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=600, help="training images (default 600)")
    ap.add_argument("--test", type=int, default=200, help="test images (default 200)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--proposals", default="selective-search")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/rcnn-vs-fast")
    args = ap.parse_args()

    import torch

    from cnnlab.teaching.experiments.rcnn_vs_fast import rcnn_vs_fast

    torch.set_num_threads(args.threads)
    t0, load0 = time.time(), os.getloadavg()[0]
    out = rcnn_vs_fast(
        train_images=args.train,
        test_images=args.test,
        epochs=args.epochs,
        proposals=args.proposals,
        out_dir=args.out,
    )
    res = out["results"]
    rc, fast = res["R-CNN"], res["Fast R-CNN"]
    print(f"\n{out['settings']}")
    print(f"proposals: {rc['proposals_per_image']:.1f} per image, "
          f"{out['proposal_seconds_per_image'] * 1000:.0f} ms per image (shared)")  # fmt: skip
    print(f"{'method':<12}{'mAP@0.5':>9}{'COCO mAP':>10}{'ms/image':>10}{'body MACs':>12}")
    for name, r in res.items():
        ms, macs = r["seconds_per_image"] * 1000, r["macs_per_image"] / 1e6
        print(f"{name:<12}{r['map_50_voc']:>9.3f}{r['map_coco']:>10.3f}{ms:>10.1f}{macs:>11.1f}M")
    speed = rc["seconds_per_image"] / fast["seconds_per_image"]
    fewer = rc["macs_per_image"] / fast["macs_per_image"]
    print(f"Fast R-CNN is {speed:.1f}x faster per image ({fewer:.1f}x fewer body MACs)")
    print("proposals  R-CNN ms  Fast ms  ratio")
    for k in rc["sweep"]:
        a, b = rc["sweep"][k] * 1000, fast["sweep"][k] * 1000
        print(f"{k:>9}  {a:>8.1f}  {b:>7.1f}  {a / b:>5.1f}x")
    print(f"wall {time.time() - t0:.0f} s, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"run folder {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
