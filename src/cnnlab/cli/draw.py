"""``cnnlab draw MODEL -o model.svg``: the architecture as the lecture slides draw it."""

from __future__ import annotations

DRAW_EPILOG = """examples:
  cnnlab draw alexnet2012 -o alexnet.svg
  cnnlab draw googlenet -o googlenet.png               Inception branches side by side
  cnnlab draw resnet152 -o r152.svg                    36 identical bottlenecks drawn as x 36
  cnnlab draw mypkg.nets:build --input 1x28x28 -o net.svg

MODEL is what `cnnlab summary` takes: a zoo name, a torchvision name or module:factory.
Boxes: height from H, depth from W, thickness from C (log scale); element-wise layers
(batch norm, ReLU, dropout) are left out as the slides leave them out."""


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "draw",
        help="block diagram of a model (SVG or PNG) from its layer table",
        description="Draw a model's feature maps as boxes sized by C, H and W, labelled with "
        "kernel/stride and output shape; Inception branches side by side, residual and dense "
        "connections as arrows.",
        epilog=DRAW_EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("model", metavar="MODEL", help="zoo name, torchvision name or module:factory")
    p.add_argument("--input", "-i", metavar="CxHxW", help="input size (default: the model's)")
    p.add_argument("-o", "--out", metavar="FILE", required=True, help="model.svg or model.png")
    p.set_defaults(func=_draw)


def _draw(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from cnnlab._util import parse_input
    from cnnlab.analysis.resolve import load_model
    from cnnlab.errors import ConfigError
    from cnnlab.viz.draw import draw

    out = Path(args.out)
    if out.suffix.lower() not in (".svg", ".png"):
        raise ConfigError(
            f"cannot draw to {out.name}: give a .svg or .png file name", "e.g. -o model.svg"
        )
    model, default, name = load_model(args.model)
    size = parse_input(args.input) if args.input else default
    if size is None:
        raise ConfigError(f"{args.model} has no default input size", "give --input CxHxW")
    d = draw(model, size, out, model_name=name)
    Console(emoji=False, highlight=False).print(
        f"{name}: {d.boxes} feature maps drawn, {d.canvas.width:.0f}x{d.canvas.height:.0f} px; "
        f"wrote {out}",
        markup=False,
        soft_wrap=True,  # a path is not split at the terminal's width
    )
    return 0
