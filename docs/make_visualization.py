"""Write docs/visualization.md and its pictures by running every command it shows.

Nothing in the page is placed by hand: each ``cnnlab`` command below runs through the real
CLI (in this process), its printed output is copied under it and its picture is linked.

    python docs/make_visualization.py --run runs/lenet5-cifar10jpeg-docs --data-dir DIR

``--run`` is a CIFAR-10 (JPEG) run trained here; the page says how it was trained. Run from the
repository root; pictures go to docs/img/viz/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = Path("docs/img/viz")


class Page:
    def __init__(self):
        self.parts: list[str] = []

    def text(self, s: str) -> None:
        self.parts.append(s.strip("\n") + "\n")

    def run(self, cmd: str, picture: str | None = None, show_output: bool = True) -> str:
        """Run ``cnnlab ...`` (``cmd`` without the program name), show it and its output."""
        from cnnlab.cli import main

        args = shlex.split(cmd)
        buf = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            code = main(args)
        took = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"cnnlab {cmd} exited with {code}")
        out = buf.getvalue().rstrip()
        print(f"cnnlab {cmd}  ({took:.1f} s)", file=sys.stderr)
        block = f"```console\n$ cnnlab {cmd}\n"
        if show_output and out:
            block += out + "\n"
        self.parts.append(block + "```\n")
        if picture:
            self.parts.append(f"![{Path(picture).stem}]({Path(picture).relative_to('docs')})\n")
        return out

    def write(self, path: Path) -> None:
        path.write_text("\n".join(self.parts))


def cifar_image(run: str, data_dir: str, out: Path) -> str:
    """The first CIFAR-10 (JPEG) test image the run classifies right with confidence > 0.6,
    as a PNG for the attribution examples; returns its class."""
    import torch
    from torchvision.io import write_png

    from cnnlab.data import load_dataset
    from cnnlab.viz.source import load_source

    src = load_source(run)
    ds = load_dataset("cifar10-jpeg", split="test", data_dir=data_dir)
    with torch.inference_mode():
        p = torch.softmax(src.model(src.pipeline(ds.images[:200])), 1)
    conf, pred = p.max(1)
    ok = ((pred == ds.labels[:200]) & (conf > 0.6)).nonzero().flatten()
    index = int(ok[0]) if len(ok) else 0
    write_png(ds.images[index], str(out))
    return ds.classes[int(ds.labels[index])]


def screenshot(report: Path, out: Path) -> bool:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        browser = shutil.which(name)
        if browser:
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", "--window-size=1100,1500",
                            f"--screenshot={out.resolve()}", report.resolve().as_uri()],
                           capture_output=True, timeout=120)  # fmt: skip
            return out.is_file()
    return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a CIFAR-10 (JPEG) run folder")
    p.add_argument("--data-dir", required=True, help="where cifar10-jpeg.tar.gz is")
    args = p.parse_args()
    os.environ["COLUMNS"] = "100"  # the commands' rich output, as a 100-column terminal shows it
    IMG.mkdir(parents=True, exist_ok=True)
    run = args.run
    summary = json.loads((Path(run) / "summary.json").read_text())
    score = (summary.get("test") or summary.get("final"))["top1"]
    how = (
        " (a run of cnnlab 0.1's trainer, before the validation split: the score is the test "
        "split after the last epoch)"
        if "final" in summary
        else ""
    )
    cfg = (Path(run) / "config.yaml").read_text()
    secs = summary["wall_seconds"]
    took = f"{secs:.0f} s of training" if secs < 120 else f"{secs / 60:.0f} minutes"
    aug = next(ln.split(":", 1)[1].strip() for ln in cfg.splitlines() if ln.startswith("augment"))
    img = IMG / "cifar-test.png"
    label = cifar_image(run, args.data_dir, img)
    page = Page()
    page.text(f"""
# Seeing what a CNN computes: `cnnlab filter`, `cnnlab viz`, `cnnlab draw`, `cnnlab report`

<!-- Written by docs/make_visualization.py: edit the script, not this page. -->

Half of what the lecture notes show is pictures: a filter slid over an image (seed 000, seed
004 §1), AlexNet's and ZFNet's learned first-layer filters and ZFNet's deconvnet (seed 002),
the class heat maps of a convolutionalized classifier (seed 004) and the block diagrams of the
architectures. Every picture on this page was made by the command printed above it, run by
`docs/make_visualization.py`.

The trained model here is cnnlab's LeNet-5 (modern form) on CIFAR-10 (JPEG), run folder
`{run}`, trained on this 2-core CPU with

    cnnlab train lenet5 --data cifar10-jpeg --augment {aug} --epochs {summary["epochs"]}

{score:.2f}% test top-1 after {took}{how}
(a small, quick model: the point is the pictures, not the score). Its first layer has six 5x5
RGB filters.

SOURCE, in every `cnnlab viz` command, is a run folder, a checkpoint (`.pt`), a model name
(cnnlab zoo or torchvision; `--weights FILE` loads a state dict such as torchvision's `.pth`,
otherwise the weights are random and the command says so) or `module:factory`. A checkpoint
brings the input pipeline it was trained with, so images are prepared as in training; names and
factories get torchvision's ImageNet preparation (resize, ImageNet mean and std for RGB).

## 1. Image filters: `cnnlab filter`

A conv layer slides a kernel over the image and takes a weighted sum at every position. What
frameworks compute is cross-correlation (the kernel is not flipped); `--flip` turns it 180
degrees first, which is convolution as signal processing defines it. `--average` divides by the
number of cells: seed 000's "element-wise multiplication and average". The output size is
worked out with `cnnlab.arithmetic`, so it agrees with `cnnlab shape`.
""")
    page.run("filter --list")
    page.run(f"filter sample:china --kernel outline --stride 2 --pad 1 -o {IMG}/filter-outline.png",
             f"{IMG}/filter-outline.png")  # fmt: skip
    page.run(f"filter sample:china --kernel sobel-x --gray -o {IMG}/filter-sobel-x.png",
             f"{IMG}/filter-sobel-x.png")  # fmt: skip
    seed000 = "0.0,1,1,0.0;0.0,1,1,0.0;0.0,1,1,0.0;0.0,0.9,0.9,0.0"
    page.run(f'filter sample:flower --kernel "{seed000}" --average --gray '
             f"-o {IMG}/filter-seed000.png", f"{IMG}/filter-seed000.png")  # fmt: skip
    page.text("""
The last one is seed 000's 4x4 filter for a vertical stroke, averaged: it answers to vertical
strokes wherever they are in the picture (the flower's stems and petal edges). From Python:
`cnnlab.viz.apply_kernel(image, kernel, stride=1, pad=0, flip=False, average=False)` returns
the filtered array (H x W or H x W x C, each channel on its own); the tests check it against
`scipy.signal.correlate2d`/`convolve2d` and `torch.nn.functional.conv2d`.

## 2. Learned filters: `cnnlab viz filters`

A conv layer's kernels as tiles: the first layer in RGB (each kernel min-max normalised on its
own, as the AlexNet and ZFNet figures show them), deeper layers as the mean over input channels
(`--mode channels` shows one tile per input channel).
""")
    page.run(f"viz filters {run} -o {IMG}/filters-cifar.png", f"{IMG}/filters-cifar.png")
    page.run(f"viz filters resnet18 -o {IMG}/filters-random.png", f"{IMG}/filters-random.png")
    page.text("""
Trained filters are smooth colour blobs and oriented edges; the untrained ResNet-18's are
noise. A layer that is not a convolution is refused with the list of the conv layers, closest
name first.

## 3. Feature maps: `cnnlab viz features`

The outputs of chosen layers (`--layer NAME ...`; default: the end of each stage, the last layer
before each drop in resolution), the most active maps of each, labelled with the layer's output
shape and receptive field as `cnnlab summary` computes them.
""")
    page.run(f"viz features {run} {img} -o {IMG}/features-cifar.png", f"{IMG}/features-cifar.png")
    page.run(f"viz features resnet18 sample:china -o {IMG}/features-resnet18.png",
             f"{IMG}/features-resnet18.png")  # fmt: skip
    page.run(f"viz features docs/tinynet.py:build sample:flower --input 3x64x64 "
             f"-o {IMG}/features-factory.png", f"{IMG}/features-factory.png")  # fmt: skip
    page.text(f"""
## 4. ZFNet's deconvnet and attributions: `cnnlab viz attribute`

Which pixels made the model say "{label}" for this CIFAR-10 test image (the first of the
test split it classifies right with more than 60% confidence)? Captum
(`captum.attr`) computes each method; cnnlab resolves the model, the layer and the class,
prepares the image as the run was trained and draws the result. `--target` takes a class index
or name (default: the predicted class).

""")
    methods = {
        "deconv": "Zeiler & Fergus's deconvnet (ECCV 2014): the signal projected back through "
        "transposed filters, the max-pooling switches and ReLUs on the backward signal",
        "guided": "guided backpropagation (Springenberg et al. 2015): gradients that are "
        "positive and pass a positive ReLU input",
        "saliency": "the absolute input gradient (Simonyan et al. 2014)",
        "gradcam": "Grad-CAM (Selvaraju et al. 2017) on a conv layer (`--layer`, default the "
        "last conv), upsampled to the image",
        "occlusion": "ZFNet's occlusion experiment: how much the class score drops when a grey "
        "patch covers each place",
    }
    rows = "".join(f"| `{m}` | {what} |\n" for m, what in methods.items())
    page.text("| method | what it shows |\n| --- | --- |\n" + rows)
    for method in ("deconv", "guided", "saliency", "gradcam", "occlusion"):
        page.run(f"viz attribute {run} {img} --method {method} --target {label} "
                 f"-o {IMG}/attr-{method}.png",
                 f"{IMG}/attr-{method}.png")  # fmt: skip
    page.text("""
From Python, `cnnlab.viz.attribute(model, x, method, target, layer=None)` returns a tensor
shaped like `x` (Grad-CAM: `[N, 1, H, W]`, upsampled); the tests check it equals Captum's own
call for every method.

### ZFNet's figure 2: `cnnlab viz top-patches`

The images of a dataset (`--data`, test split by default; `--data-dir` defaults to the run's)
that excite one unit (channel) of a layer most, each cropped to the
receptive field of the position where the maximum sits, beside the deconvnet projection of that
one activation. The crop comes from the receptive field and jump `cnnlab summary` computes, and
the centre of position 0 follows from the same rows (each conv/pool moves it by
`(D(K-1)/2 - P) x jump`); the tests check the box equals the unit's gradient support.
""")
    page.run(f"viz top-patches {run} --layer features.3 --unit 5 --data cifar10-jpeg "
             f"-o {IMG}/top-patches.png", f"{IMG}/top-patches.png")  # fmt: skip
    page.text("""
## 5. Class heat maps: `cnnlab viz heatmap`

`convolutionalize` rewrites the fully connected head as convolutions (FCN, seed 004), so the
classifier slides over an image larger than its training size and returns one class
distribution per window position (jump = the product of the strides). The map of one class
(`--class`, default the most confident anywhere), upsampled and laid over the image, shows
where the model finds it. `--size PX` first resizes the image's shorter side.
""")
    page.run(f"viz heatmap {run} sample:china --size 128 --class ship -o {IMG}/heatmap.png",
             f"{IMG}/heatmap.png")  # fmt: skip
    page.text("""
An image smaller than the training size is refused (it would give no map). A network that ends
in global average pooling (NIN, GoogLeNet, ResNet, DenseNet) has no FC head to convolutionalize:
it is already fully convolutional up to that pool, so cnnlab applies its head at every position
of the map before the pool instead (the class activation map, CAM, of Zhou et al. 2016: with a
linear head the positions' logits average to the model's own, which the tests check). The line
printed says which of the two ways was used: `(FC head convolutionalized (FCN))` or
`(head applied at each position before the global pool (CAM))`. The pool is found whether it is
a module or a functional call (`F.adaptive_avg_pool2d`, `x.mean((2, 3))`); a model with neither
an FC head nor a global pool is refused with both reasons named.

## 6. Architecture drawings: `cnnlab draw`

The block diagram the lecture slides draw, from the `cnnlab summary` data model: each feature
map a box (height from H, depth from W, thickness from C, on a log scale), labelled with its
kernel/stride above and output shape below; Inception branches side by side; residual and dense
connections as arrows into their `+` and `C` (concat) nodes; identical neighbouring blocks
drawn once with "x N". Element-wise layers (batch norm, ReLU, dropout, LRN) are left out, as the
slides leave them out. `.svg` is written directly; `.png` goes through matplotlib.
""")
    for name in ("alexnet2012", "googlenet", "resnet152", "densenet121", "resnet20"):
        page.run(f"draw {name} -o {IMG}/draw-{name}.svg", f"{IMG}/draw-{name}.svg")
    page.run(f"draw docs/tinynet.py:build --input 3x64x64 -o {IMG}/draw-tinynet.png",
             f"{IMG}/draw-tinynet.png")  # fmt: skip
    report = Path(run) / "report.html"
    page.text("""
## 7. The run report: `runs/NAME/report.html`, `cnnlab report RUN`

Every `cnnlab train` run (and `cnnlab demo`) ends by writing `report.html` into its run folder:
one self-contained page (pictures inlined as `data:` URIs, no network) with the configuration,
the layer table, the training curves, the confusion matrix, the first-layer filters, feature
maps of one test image and the most confident mistakes; `filters.png` and `features.png` are
written beside it. `cnnlab report RUN` rebuilds it (for example for a run of cnnlab 0.1). A test
opens the page in headless Chromium and checks that every section is there, every image
decodes and the screenshot is not blank.
""")
    page.run(f"report {run}")
    if screenshot(report, IMG / "report.png"):
        page.text(f"The top of `{report}` in headless Chromium:\n")
        page.parts.append(f"![report]({(IMG / 'report.png').relative_to('docs')})\n")
    page.text("""
## Errors

Bad input is one message with the fix, exit status 2, never a traceback: an unknown layer
(the layers are listed, closest name first), a layer that is not a conv for `viz filters`
(the conv layers are listed), a corrupt or unreadable image, an unknown method, kernel or
sample image, a malformed kernel string (ragged rows, non-numbers), an image smaller than the
model accepts. A grayscale image for an RGB model (or the reverse) is converted, with a note.
""")
    page.write(Path("docs/visualization.md"))


if __name__ == "__main__":
    main()
