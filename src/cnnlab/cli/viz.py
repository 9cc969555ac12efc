"""``cnnlab filter`` and ``cnnlab viz filters|features|attribute|top-patches|heatmap``:
pictures of what a CNN computes. Torch and matplotlib are imported inside the handlers."""

from __future__ import annotations

FILTER_EPILOG = """examples:
  cnnlab filter sample:china --kernel outline -o outline.png
  cnnlab filter photo.jpg --kernel "0,-1,0;-1,5,-1;0,-1,0" --stride 2 --pad 1 -o out.png
  cnnlab filter sample:flower --kernel sobel-x --gray -o edges.png
  cnnlab filter sample:china --kernel sobel-x --shift 3,2 -o shift.png
  cnnlab filter --list

--shift DX,DY checks translation equivariance (seed 000's weight sharing): the filtered shifted
image equals the shifted filtered image away from the borders, and a max-pooled map (--pool)
changes less than the map itself.

Frameworks compute cross-correlation (the kernel is not flipped); --flip gives true
convolution. --average divides by the kernel's cell count (seed 000's weighted average)."""

VIZ_EPILOG = """examples:
  cnnlab viz filters runs/NAME -o conv1.png                  first-layer filters of a run
  cnnlab viz filters alexnet --weights alexnet.pth -o f.png  torchvision's file
  cnnlab viz features runs/NAME sample:china -o maps.png
  cnnlab viz attribute runs/NAME img.png --method gradcam -o cam.png
  cnnlab viz top-patches runs/NAME --layer layer1 --unit 3 --data cifar10-jpeg -o top.png
  cnnlab viz heatmap vgg16 --weights vgg16.pth sample:china -o heat.png

SOURCE is a run folder, a cnnlab checkpoint (.pt), a model name (cnnlab zoo or torchvision;
--weights FILE loads a state dict, otherwise the weights are random) or module:factory."""


def register(sub, formatter_class) -> None:
    f = sub.add_parser(
        "filter",
        help="apply an image kernel (blur, sharpen, emboss, outline, sobel...) to a picture",
        description="Slide a kernel over an image as a conv layer does and save input | kernel "
        "| output. Prints the output size with its working.",
        epilog=FILTER_EPILOG,
        formatter_class=formatter_class,
    )
    f.add_argument(
        "image", nargs="?", metavar="IMAGE", help="a file, sample:china or sample:flower (built in)"
    )
    f.add_argument(
        "--kernel",
        "-k",
        metavar='NAME|"a,b;c,d"',
        help='a built-in name (--list) or the numbers row by row, e.g. "1,0,-1;2,0,-2;1,0,-1"',
    )
    f.add_argument("--stride", "-s", type=int, default=1, help="[default: 1]")
    f.add_argument("--pad", "-p", type=int, default=0, help="zeros on every side [default: 0]")
    f.add_argument("--average", action="store_true", help="divide by the kernel's cell count")
    f.add_argument("--flip", action="store_true", help="true convolution (kernel rotated 180°)")
    f.add_argument("--gray", action="store_true", help="convert the image to grayscale first")
    f.add_argument("--list", action="store_true", help="print the built-in kernels")
    f.add_argument(
        "--shift",
        metavar="DX,DY",
        help="shift the image DX right and DY down: show filter(shift x) = shift(filter x) "
        "away from the borders, and how much less a max-pooled map changes",
    )
    f.add_argument("--pool", type=int, help="max-pool window for --shift [default: 2]")
    f.add_argument("-o", "--out", metavar="FILE", help="output picture (.png/.svg/.pdf)")
    f.set_defaults(func=_filter)

    v = sub.add_parser(
        "viz",
        help="learned filters, feature maps, attributions (deconvnet, Grad-CAM...), ZFNet's "
        "top patches, class heat maps",
        description="Pictures of what a trained network computes.",
        epilog=VIZ_EPILOG,
        formatter_class=formatter_class,
    )
    vs = v.add_subparsers(dest="viz_command", metavar="WHAT")

    def common(p, image=True):
        p.add_argument(
            "source", metavar="SOURCE", help="run folder, checkpoint, model name or module:factory"
        )
        if image:
            p.add_argument("image", metavar="IMAGE", help="a file, sample:china or sample:flower")
        p.add_argument(
            "--weights",
            metavar="FILE",
            help="state dict for a model name (e.g. torchvision's .pth)",
        )
        p.add_argument(
            "--input",
            metavar="CxHxW",
            help="input size for a model name or factory [default: the model's]",
        )
        p.add_argument("-o", "--out", metavar="FILE", required=True, help="output picture")

    p = vs.add_parser(
        "filters", help="a conv layer's kernels as a grid", formatter_class=formatter_class
    )
    common(p, image=False)
    p.add_argument("--layer", metavar="NAME", help="conv layer [default: the first conv]")
    p.add_argument(
        "--mode",
        choices=["auto", "rgb", "mean", "channels"],
        default="auto",
        help="rgb tiles (3 inputs), the mean over input channels, or one tile per "
        "input channel [default: auto = rgb for 3 inputs, else mean]",
    )
    p.set_defaults(func=_filters)

    p = vs.add_parser(
        "features",
        help="feature maps of chosen layers for one image",
        formatter_class=formatter_class,
    )
    common(p)
    p.add_argument(
        "--layer", metavar="NAME", nargs="+", help="layers [default: the end of each stage]"
    )
    p.add_argument(
        "--max-maps",
        type=int,
        default=32,
        metavar="N",
        help="maps shown per layer, most active first [default: 32]",
    )
    p.set_defaults(func=_features)

    p = vs.add_parser(
        "attribute",
        help="deconvnet, guided backprop, saliency, Grad-CAM or occlusion (Captum)",
        formatter_class=formatter_class,
    )
    common(p)
    p.add_argument(
        "--method",
        "-m",
        required=True,
        metavar="METHOD",
        help="deconv, guided, saliency, gradcam or occlusion",
    )
    p.add_argument("--layer", metavar="NAME", help="Grad-CAM's layer [default: the last conv]")
    p.add_argument(
        "--target", metavar="CLASS", help="class index or name [default: the predicted class]"
    )
    p.set_defaults(func=_attribute)

    p = vs.add_parser(
        "top-patches",
        help="ZFNet fig. 2: the images that excite a unit most, cropped to its receptive field",
        formatter_class=formatter_class,
    )
    common(p, image=False)
    p.add_argument("--layer", metavar="NAME", required=True)
    p.add_argument("--unit", type=int, metavar="K", required=True, help="channel of the layer")
    p.add_argument(
        "--data",
        metavar="NAME",
        required=True,
        help="dataset (cnnlab.data names or an image folder)",
    )
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--split", choices=["train", "test"], default="test", help="[default: test]")
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        default=10000,
        help="look at the first N images [default: 10000]",
    )
    p.add_argument("--top", type=int, default=9, help="[default: 9]")
    p.set_defaults(func=_top_patches)

    p = vs.add_parser(
        "heatmap",
        help="class heat map of a convolutionalized classifier",
        formatter_class=formatter_class,
    )
    common(p)
    p.add_argument(
        "--class",
        dest="klass",
        metavar="K",
        help="class index or name [default: the most confident class]",
    )
    p.add_argument(
        "--size",
        type=int,
        metavar="PX",
        help="resize the image's shorter side to PX first [default: as it is]",
    )
    p.set_defaults(func=_heatmap)
    v.set_defaults(func=lambda args: _viz_help(v))


def _viz_help(parser) -> int:
    parser.print_help()
    return 2


def _console():
    from rich.console import Console

    return Console(emoji=False, highlight=False)


def _notes(console, source) -> None:
    """Print the notes not printed yet."""
    done = getattr(source, "_printed", 0)
    for note in source.notes[done:]:
        console.print(f"[yellow]note:[/] {note}")
    source._printed = len(source.notes)


# ------------------------------------------------------------------------------------ filter


def _filter(args) -> int:
    import numpy as np
    from rich.markup import escape

    from cnnlab.errors import ConfigError
    from cnnlab.viz.filters import KERNELS, kernel_text

    console = _console()
    if args.list:
        for name, (what, k) in KERNELS.items():
            console.print(f"[bold]{name}[/]  {what}")
            for line in kernel_text(np.array(k)).splitlines():
                console.print(f"    {escape(line)}")
        return 0
    if not args.image or not args.kernel or not args.out:
        raise ConfigError(
            "cnnlab filter needs IMAGE, --kernel and -o",
            "e.g. cnnlab filter sample:china --kernel outline -o out.png "
            "(cnnlab filter --list shows the kernels)",
        )
    from cnnlab.viz.figure import check_output
    from cnnlab.viz.filters import (
        apply_kernel,
        get_kernel,
        output_size_working,
        plot_kernel_figure,
    )
    from cnnlab.viz.images import read_image, to_model_channels

    out_path = check_output(args.out)
    shift = _parse_shift(args.shift) if args.shift is not None else None
    if args.pool is not None and shift is None:  # the pool belongs to the shift experiment
        raise ConfigError(
            "--pool is the max-pool window of the --shift experiment; without --shift it does "
            "nothing",
            "add --shift DX,DY (e.g. --shift 1,0), or drop --pool",
        )
    if args.pool is not None and args.pool < 1:
        raise ConfigError(f"--pool must be 1 or more, got {args.pool}", "e.g. --pool 2")
    if shift and (args.stride != 1 or args.pad):
        raise ConfigError(
            "--shift filters at stride 1 with 'same' zero padding; --stride and --pad do not apply",
            "drop --stride/--pad (a strided map is equivariant only to multiples of the stride)",
        )
    kernel = get_kernel(args.kernel)
    img = read_image(args.image)
    if args.gray:
        img, _ = to_model_channels(img, 1)
    if shift:
        return _filter_shift(args, console, img, kernel, shift, out_path)
    h, w = img.shape[:2]
    out = apply_kernel(
        img, kernel, stride=args.stride, pad=args.pad, flip=args.flip, average=args.average
    )
    kh, kw = kernel.shape
    console.print(
        f"input {h}x{w}x{img.shape[2]}, kernel {kh}x{kw}, stride {args.stride}, pad {args.pad}"
    )
    for line in output_size_working(h, w, kernel, args.stride, args.pad):
        console.print("  " + line)
    console.print(
        f"output {out.shape[0]}x{out.shape[1]}x{img.shape[2]} (each channel filtered on its own)"
    )
    if args.flip:
        console.print("--flip: the kernel was rotated 180° first, so this is true convolution.")
    else:
        console.print(
            "This is cross-correlation, what PyTorch and every framework call "
            "convolution; --flip gives true convolution."
        )
    if args.average:
        console.print(f"--average: the sum is divided by the kernel's {kernel.size} cells.")
    shown = kernel[::-1, ::-1] if args.flip else kernel
    shown = shown / shown.size if args.average else shown
    name = args.kernel if args.kernel in KERNELS else "custom kernel"
    plot_kernel_figure(
        img.squeeze(-1) if img.shape[2] == 1 else img,
        shown,
        out.squeeze(-1) if out.shape[2] == 1 else out,
        out_path,
        title=f"{name}, stride {args.stride}, pad {args.pad}"
        + (", flipped (convolution)" if args.flip else ""),
    )
    console.print(f"wrote {out_path}", markup=False, soft_wrap=True)
    return 0


def _parse_shift(text: str) -> tuple[int, int]:
    from cnnlab.errors import ConfigError

    parts = text.replace(" ", "").split(",")
    try:
        dx, dy = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"malformed --shift {text!r}", "give whole pixels DX,DY, e.g. --shift 3,2 or -2,0"
        ) from None
    return dx, dy


def _filter_shift(args, console, img, kernel, shift, out_path) -> int:
    from cnnlab.viz.equivariance import plot_shift_equivariance, shift_equivariance

    k = kernel[::-1, ::-1] if args.flip else kernel
    k = k / k.size if args.average else k
    result = shift_equivariance(img, k, *shift, pool=args.pool or 2)
    for line in result.lines():
        console.print(line, highlight=False)
    name = args.kernel if args.kernel in _kernel_names() else "custom kernel"
    plot_shift_equivariance(result, out_path, title=f"{name}: shift ({shift[0]}, {shift[1]})")
    console.print(f"wrote {out_path}", markup=False, soft_wrap=True)
    return 0


def _kernel_names():
    from cnnlab.viz.filters import KERNELS

    return KERNELS


# ----------------------------------------------------------------------------------- viz ...


def _source(args, console):
    from cnnlab.viz.figure import check_output
    from cnnlab.viz.source import load_source

    check_output(args.out)
    source = load_source(args.source, weights=args.weights, input_size=args.input)
    _notes(console, source)
    return source


def _image(args, source, console):
    from cnnlab.viz.images import read_image
    from cnnlab.viz.source import check_image_size

    img = read_image(args.image)
    check_image_size(img, source.data_hw)
    x, shown = source.prepare(img)
    _notes(console, source)
    return x, shown


def _filters(args) -> int:
    from cnnlab.viz.filters import filter_tiles, plot_filter_grid
    from cnnlab.viz.source import get_conv

    console = _console()
    source = _source(args, console)
    name, layer = get_conv(source.model, args.layer)
    tiles, mode = filter_tiles(layer.weight, args.mode)
    w = layer.weight
    what = {"rgb": "RGB", "mean": "mean over input channels", "channels": "one per input channel"}
    title = (
        f"{source.name}: {name} {w.shape[0]} filters {w.shape[2]}x{w.shape[3]}x{w.shape[1]} "
        f"({what[mode]}, each normalised)"
    )
    plot_filter_grid(tiles, args.out, title)
    console.print(
        f"{name}: {w.shape[0]} kernels of {w.shape[1]}x{w.shape[2]}x{w.shape[3]}, "
        f"{len(tiles)} tiles ({what[mode]}); wrote {args.out}"
    )
    return 0


def _features(args) -> int:
    import cnnlab
    from cnnlab.errors import ConfigError
    from cnnlab.viz.features import feature_maps, fmt_rf, plot_features, stage_ends
    from cnnlab.viz.source import get_layer

    if args.max_maps < 1:  # 0 or less drew a figure of empty panels
        raise ConfigError(
            f"--max-maps must be at least 1, got {args.max_maps}",
            "give the number of maps to show per layer, e.g. --max-maps 16",
        )
    console = _console()
    source = _source(args, console)
    layers = args.layer
    if layers:
        for name in layers:
            get_layer(source.model, name)  # fail before any work on an unknown name
    x, shown = _image(args, source, console)
    s = cnnlab.summary(source.model, tuple(x.shape[1:]), model_name=source.name)
    layers = layers or stage_ends(s, source.model)
    maps = feature_maps(source.model, x, layers, s)
    for fm in maps.values():
        console.print(f"{fm.name}: {'x'.join(map(str, fm.shape))}  {fmt_rf(fm)}")
    plot_features(shown, maps, args.out, f"{source.name}: feature maps", args.max_maps)
    console.print(f"wrote {args.out}", markup=False, soft_wrap=True)
    return 0


def resolve_class(text, source, what="--target") -> int | None:
    """A class given as an index or a name."""
    from cnnlab.errors import ConfigError, suggest

    if text is None:
        return None
    if str(text).lstrip("-").isdigit():
        k = int(text)
        n = _num_classes(source)
        if not 0 <= k < n:
            raise ConfigError(
                f"{what} {k} is out of range: the model has {n} classes", f"give 0..{n - 1}"
            )
        return k
    if source.classes and text in source.classes:
        return source.classes.index(text)
    names = source.classes or []
    raise ConfigError(
        f"unknown class {text!r}",
        suggest(text, names)
        or (f"classes: {', '.join(names[:20])}" if names else "give the class index"),
    )


def _num_classes(source) -> int:
    import torch

    if source.classes:
        return len(source.classes)
    with torch.inference_mode():
        out = source.model(torch.zeros(1, *source.input_size))
    out = out[0] if isinstance(out, (tuple, list)) else out
    return int(out.shape[1])


def _attribute(args) -> int:
    from cnnlab.viz.attribute import (
        attribute,
        check_method,
        last_conv,
        plot_attribution,
        predicted_class,
        relu_modules,
    )
    from cnnlab.viz.source import get_conv

    check_method(args.method)
    console = _console()
    source = _source(args, console)
    if args.layer:
        if args.method != "gradcam":
            from cnnlab.errors import ConfigError

            raise ConfigError(
                f"--layer is Grad-CAM's layer; {args.method} attributes the input",
                "drop --layer, or use --method gradcam",
            )
        get_conv(source.model, args.layer)
    target = resolve_class(args.target, source)
    x, shown = _image(args, source, console)
    if target is None:
        target = predicted_class(source.model, x)
        console.print(f"target: the predicted class, {target} ({source.class_name(target)})")
    if args.method in ("deconv", "guided") and not relu_modules(source.model):
        console.print(
            "[yellow]note:[/] the model applies ReLU as a function, not nn.ReLU "
            "modules, so Captum cannot change its backward pass: this shows plain "
            "gradients"
        )
    a = attribute(source.model, x, args.method, target, layer=args.layer)
    title = f"{source.name}: {args.method} for {source.class_name(target)}"
    if args.method == "gradcam":
        title += f" at {args.layer or last_conv(source.model)}"
    plot_attribution(shown, a[0], args.method, args.out, title)
    console.print(f"wrote {args.out}", markup=False, soft_wrap=True)
    return 0


def _top_patches(args) -> int:
    from cnnlab.data import load_dataset
    from cnnlab.errors import ConfigError
    from cnnlab.viz.patches import plot_top_patches, top_patches
    from cnnlab.viz.source import get_layer

    console = _console()
    source = _source(args, console)
    get_layer(source.model, args.layer)
    if args.top < 1 or args.limit < 1:
        raise ConfigError("--top and --limit must be at least 1")
    data_dir = args.data_dir
    if data_dir is None and source.state is not None:
        data_dir = source.state.get("config", {}).get("data_dir")
    ds = load_dataset(args.data, split=args.split, data_dir=data_dir)
    images, labels = ds.images[: args.limit], ds.labels[: args.limit]
    c, h, w = images.shape[1:]
    if c != source.input_size[0]:
        from cnnlab.data.datasets import _reshape

        ds = _reshape(ds.subset(slice(0, args.limit)), None, None, source.input_size[0])
        images, labels = ds.images, ds.labels
        console.print(
            f"[yellow]note:[/] {args.data} converted to {source.input_size[0]} "
            "channel(s) for the model"
        )
    if (h, w) != tuple(source.data_hw):
        from cnnlab.errors import ShapeError

        raise ShapeError(
            f"{args.data}'s images are {h}x{w}; the model takes "
            f"{source.data_hw[0]}x{source.data_hw[1]}",
            "use the dataset the model was trained on",
        )
    patches = top_patches(source, args.layer, args.unit, images, labels, top=args.top)
    for p in patches:
        t, l, b, r = p.box
        console.print(
            f"#{p.index} ({ds.classes[p.label]}): {p.score:.3f} at {p.position}, "
            f"rows {t}-{b}, cols {l}-{r}"
        )
    plot_top_patches(
        patches,
        args.out,
        f"{source.name}: {args.layer} unit {args.unit}, top {len(patches)} of "
        f"{len(images)} {args.data} images (deconvnet | patch)",
        ds.classes,
    )
    console.print(f"wrote {args.out}", markup=False, soft_wrap=True)
    return 0


def _heatmap(args) -> int:
    import numpy as np

    from cnnlab.errors import ConfigError
    from cnnlab.viz.heatmap import choose_class, class_map, plot_heatmap
    from cnnlab.viz.images import read_image
    from cnnlab.viz.source import check_image_size

    if args.size is not None and args.size < 1:  # 0 was ignored, a negative blamed the image
        raise ConfigError(
            f"--size must be a positive number of pixels, got {args.size}",
            "give the shorter side to resize to, e.g. --size 256, or leave --size out",
        )
    console = _console()
    source = _source(args, console)
    klass = resolve_class(args.klass, source, "--class")
    img = read_image(args.image)
    h, w = img.shape[:2]
    need = tuple(source.input_size[1:])
    if args.size is not None:
        k = args.size / min(h, w)
        h, w = max(1, round(h * k)), max(1, round(w * k))
        if h < need[0] or w < need[1]:  # the image itself may be large enough: blame --size
            raise ConfigError(
                f"--size {args.size} makes the image {h}x{w}, smaller than the "
                f"{need[0]}x{need[1]} model's training size accepts",  # check_image_size's words
                f"give --size {max(need)} or more, or leave --size out",
            )
    check_image_size(np.empty((h, w, 1)), need, "model's training size")
    x, shown = source.prepare(img, size=(h, w))
    _notes(console, source)
    probs, how = class_map(source, x)
    if klass is None:
        klass = choose_class(probs)
    name = source.class_name(klass)
    console.print(
        f"class map {probs.shape[1]}x{probs.shape[2]} for a {h}x{w} image ({how}); "
        f"{name}: max {float(probs[klass].max()):.3f}, mean "
        f"{float(probs[klass].mean()):.3f}"
    )
    plot_heatmap(shown, probs, klass, args.out, f"{source.name}: where is {name}?", name)
    console.print(f"wrote {args.out}", markup=False, soft_wrap=True)
    return 0
