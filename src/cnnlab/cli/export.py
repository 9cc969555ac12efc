"""``cnnlab export``: a trained model as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

EPILOG = """examples:
  cnnlab export runs/NAME --format onnx -o lenet.onnx          the run's best.pt
  cnnlab export runs/NAME/last.pt --format torchscript -o lenet.pt
  cnnlab export resnet18 --input 3x32x32 --format onnx -o r18.onnx   an untrained zoo model
  cnnlab export path/to/net.py:Net --input 3x64x64 -o net.onnx

The graph takes the normalised input [N, C, H, W] (N dynamic) and returns logits; the input
pipeline's mean and std, the classes and sizes are in the ONNX metadata (TorchScript: the
cnnlab.json extra file). Each export is run back (onnxruntime) at batch sizes 1 and 3 and must
equal PyTorch within 1e-4 + 1e-3*|y|, or nothing is written. A file name ending in the other
format's extension (.onnx with --format torchscript, .pt/.pth/.ts with onnx) is refused."""


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained model as ONNX or TorchScript (outputs checked against PyTorch)",
        description="Export the model of a run folder or checkpoint (or an untrained zoo / "
        "module:factory model with --input) as ONNX or TorchScript, check the file against "
        "PyTorch, and record the input pipeline in its metadata.",
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    p.add_argument("source", metavar="RUN|CHECKPOINT", help="run folder, checkpoint, or model")
    p.add_argument("--format", "-f", default="onnx", choices=("onnx", "torchscript"))
    p.add_argument("--output", "-o", metavar="FILE", required=True, help="file to write")
    p.add_argument("--input", "-i", metavar="CxHxW", help="input size (untrained models only)")
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    from pathlib import Path

    from cnnlab.errors import ConfigError
    from cnnlab.export import export_model, export_run

    src = Path(args.source)
    if (
        src.exists()
        or src.suffix in (".pt", ".pth")
        or "/" in args.source
        and ":" not in args.source
    ):
        if args.input:
            raise ConfigError(
                "--input applies to untrained models only; a run exports at its trained size"
            )
        report = export_run(src, args.output, args.format)
    else:  # a zoo name or module:factory, exported untrained
        from cnnlab._util import parse_input

        dims = parse_input(args.input) if args.input else None
        if dims is not None and len(dims) != 3:
            raise ConfigError(f"--input {args.input} is not CxHxW", "e.g. --input 3x32x32")
        model, default, name = _real_model(args.source)
        if dims is None and default is None:
            raise ConfigError(f"{name} needs an input size", "add --input CxHxW")
        if dims is not None:
            # the check summary and draw make: a ShapeError naming the layer and a size that
            # fits, instead of the exporter's traceback (it runs the model on the CPU)
            from cnnlab.analysis.summary import summary

            summary(model, dims, model_name=name, device="cpu")
        report = export_model(model, dims or default, args.output, args.format,
                              metadata={"cnnlab.model": name})  # fmt: skip
    print(report.describe())
    return 0


def _real_model(spec: str):
    """A model with real (initialised) weights: the summary's loader builds zoo models on the
    meta device, which has no values to export."""
    from cnnlab.analysis.resolve import load_model
    from cnnlab.models import create, get_info, list_models

    if spec in list_models():
        return create(spec), tuple(get_info(spec).input_size), spec
    return load_model(spec)
