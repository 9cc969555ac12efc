"""``cnnlab detect | segment``: a trained detector's boxes, or a segmenter's mask, on an image."""

from __future__ import annotations

import argparse

DETECT_EXAMPLES = """examples:
  cnnlab train yolov1_small --data digits-det --epochs 30 --name yolo
  cnnlab detect runs/yolo digits-det:0 -o boxes.png    # test image 0 of digits-det
  cnnlab detect runs/yolo scene.png -o boxes.png
  cnnlab detect runs/frcnn/best.pt scene.png -o boxes.png --min-score 0.5"""

SEGMENT_EXAMPLES = """examples:
  cnnlab train fcn8s_small --data digits-seg --epochs 20 --name fcn
  cnnlab segment runs/fcn digits-seg:3 -o mask.png
  cnnlab segment runs/fcn scene.png -o mask.png"""


def register(sub, formatter=argparse.RawDescriptionHelpFormatter) -> None:
    d = sub.add_parser(
        "detect",
        help="draw a trained detector's boxes on an image",
        description="Run a detector trained with `cnnlab train` (YOLO v1, Faster R-CNN) on an "
        "image and write it with the boxes drawn (torchvision's draw_bounding_boxes); the boxes "
        "are also printed.",
        formatter_class=formatter,
        epilog=DETECT_EXAMPLES,
    )
    _run_image_output(d, "digits-det")
    d.add_argument("--min-score", type=float, default=0.3, help="draw boxes at or above this")
    d.add_argument("--device", default="cpu")
    d.set_defaults(func=_detect)

    s = sub.add_parser(
        "segment",
        help="overlay a trained segmenter's mask on an image",
        description="Run a segmentation model trained with `cnnlab train` (FCN) on an image "
        "and write it with each predicted class laid over in colour; the pixel count of each "
        "class is printed.",
        formatter_class=formatter,
        epilog=SEGMENT_EXAMPLES,
    )
    _run_image_output(s, "digits-seg")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_segment)


def _run_image_output(p, preset: str) -> None:
    """The arguments detect and segment share: RUN, IMAGE (a file or PRESET:N) and -o."""
    p.add_argument("run", help="run folder (its best.pt) or a checkpoint file")
    p.add_argument(
        "image",
        help="image file (PNG, JPEG, ...; resized to the training size), or "
        f"{preset}:N for test image N of the generated set",
    )
    p.add_argument("-o", "--output", required=True, help="PNG to write")


def _detect(args) -> int:
    import math

    from rich.console import Console

    from cnnlab.errors import ConfigError
    from cnnlab.training.dense_tasks import detect_image

    # scores are probabilities: nan or a value outside [0, 1] silently kept or dropped every box
    if not (math.isfinite(args.min_score) and 0 <= args.min_score <= 1):
        raise ConfigError(
            f"--min-score must be a number from 0 to 1, got {args.min_score:g}",
            "e.g. --min-score 0.5 (boxes scored at or above it are drawn)",
        )
    result = detect_image(args.run, args.image, args.output, min_score=args.min_score,
                          device=args.device)  # fmt: skip
    con = Console(emoji=False)
    for name, score, box in result["detections"]:
        con.print(f"{name:>10}  {score:.3f}  [{', '.join(f'{v:.1f}' for v in box)}]")
    con.print(
        f"{len(result['detections'])} boxes at score >= {args.min_score}; wrote {args.output}"
    )
    return 0


def _segment(args) -> int:
    from rich.console import Console

    from cnnlab.training.dense_tasks import segment_image

    result = segment_image(args.run, args.image, args.output, device=args.device)
    con = Console(emoji=False)
    for name, count in result["pixels"].items():
        con.print(f"{name:>12}  {count} pixels")
    con.print(f"wrote {args.output}", markup=False, soft_wrap=True)
    return 0
