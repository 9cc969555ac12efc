"""``cnnlab augment preview``: what an augmentation preset does to one image."""

from __future__ import annotations

EPILOG = """examples:
  cnnlab augment preview --preset strong sample:china -o grid.png
  cnnlab augment preview --preset lecture --data cifar10-jpeg --data-dir DIR -o grid.png
  cnnlab augment preview --preset flip-crop --data digits --index 7 --samples 8 -o grid.png

Rows: the original, each operation of the preset alone (with the preset's settings), the whole
preset, then seed 000's variations as augmentations imitate them: viewpoint (affine), scale
(crop-resize), deformation (stretch, lens), occlusion (cutout), illumination (brightness,
contrast). Columns: independent random draws. Presets: cnnlab train --help lists them."""


def register(sub, formatter_class) -> None:
    a = sub.add_parser(
        "augment",
        help="augmentation previews: one image under each operation of a preset",
        description="Augmentation tools.",
        formatter_class=formatter_class,
    )
    asub = a.add_subparsers(dest="augment_command", metavar="SUBCOMMAND")
    a.set_defaults(func=lambda args: a.print_help() or 0)
    p = asub.add_parser(
        "preview",
        help="a grid of one image under each operation of a preset and each kind of variation",
        description="Draw one image under each operation of an augmentation preset, the whole "
        "preset, and the variations seed 000 lists (viewpoint, scale, deformation, occlusion, "
        "illumination).",
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("image", nargs="?", metavar="IMAGE", help="a file, or sample:china / :flower")
    p.add_argument("--preset", default="strong", help="augmentation preset [default: strong]")
    p.add_argument("--data", metavar="NAME", help="take the image from this dataset instead")
    p.add_argument("--data-dir", metavar="DIR", help="where --data's files are")
    p.add_argument("--index", type=int, default=0, help="which --data training image [0]")
    p.add_argument("--samples", type=int, default=6, help="random draws per row [6]")
    p.add_argument("--seed", type=int, default=0, help="[default: 0]")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="grid picture (.png/.svg)")
    p.set_defaults(func=_preview)


def _preview(args) -> int:
    from rich.console import Console

    from cnnlab.viz.augment_preview import load_preview_image, plot_preview, preview_rows
    from cnnlab.viz.figure import check_output

    out = check_output(args.out)
    image = load_preview_image(args.image, args.data, args.data_dir, args.index)
    rows, notes = preview_rows(image, args.preset, args.samples, args.seed)
    what = args.image or f"{args.data} #{args.index}"
    path = plot_preview(rows, out, title=f"{what} under preset {args.preset!r}", notes=notes)
    console = Console(emoji=False, highlight=False)
    for name, _ in rows:
        console.print(f"  {name}")
    for n in notes:
        console.print(f"note: {n}")
    console.print(
        f"wrote {path} ({len(rows)} rows x {args.samples} samples)", markup=False, soft_wrap=True
    )
    return 0
