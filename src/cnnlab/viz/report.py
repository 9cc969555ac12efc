"""A run's report: ``runs/NAME/report.html``, one self-contained page.

Everything is inlined (pictures as base64 ``data:`` URIs, the style in the page), so the file
can be mailed or opened offline and never reaches the network. Sections, each with an ``id``:
``config`` (the resolved YAML), ``layers`` (the layer table, :func:`cnnlab.summary`),
``curves`` (loss and accuracy per epoch), ``confusion``, ``filters`` (the first conv layer's
kernels), ``features`` (feature maps of one test image), ``mistakes`` (the test images the
model got wrong with the most confidence). The pictures of the filters and feature maps are
also written beside the report as ``filters.png`` and ``features.png``.

:func:`build_report` reads the run through its files and the checkpoint (``best.pt``, else
``last.pt``); ``cnnlab report RUN`` calls it, and so does whoever ran the training, at the end
of the run (the trainer itself never imports this module).
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
import time
from pathlib import Path

import torch

from cnnlab.errors import DataError

SECTIONS = ("config", "layers", "curves", "confusion", "filters", "features", "mistakes")
PICTURES = ("filters.png", "features.png")  # written beside the report

_STYLE = """
body{font-family:system-ui,-apple-system,"DejaVu Sans",Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em} .meta{color:#666} img{max-width:100%;height:auto}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
table{border-collapse:collapse;font-size:.8em} td,th{border:1px solid #ddd;padding:2px 6px;
text-align:right} th{background:#f0f0f0} .scroll{overflow:auto;max-height:32em}
.grid{display:flex;flex-wrap:wrap;gap:12px} .grid figure{margin:0;text-align:center;
font-size:.8em} .grid img{width:112px;image-rendering:pixelated;border:1px solid #ccc}
.missing{color:#a33} .pair img{max-width:49%}
"""


def _b64_png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(data: bytes, alt: str) -> str:
    return f'<img src="{_b64_png(data)}" alt="{html.escape(alt)}">'


def _read_history(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _confusion(run: Path):
    path = run / "confusion.csv"
    if not path.is_file():
        return None, None
    lines = path.read_text().strip().splitlines()
    names = lines[0].split(",")[1:]
    rows = [[int(v) for v in line.split(",")[1:]] for line in lines[1:]]
    return rows, names


class _Section:
    def __init__(self, key: str, title: str):
        self.key, self.title, self.body = key, title, []

    def html(self) -> str:
        return (
            f'<section id="{self.key}"><h2>{html.escape(self.title)}</h2>\n'
            + "\n".join(self.body)
            + "</section>"
        )


def render_report(run, *, test_limit: int = 2000, n_mistakes: int = 12):
    """``(page, pictures)``: the report's HTML and the pictures written beside it
    (``{"filters.png": bytes, "features.png": bytes}``), for the run folder ``run``."""
    from cnnlab.viz.source import load_source, run_checkpoint

    run = Path(run)
    if not run.is_dir():
        raise DataError(
            f"run folder {run} does not exist",
            "give a folder written by `cnnlab train` (runs/NAME)",
        )
    run_checkpoint(run)  # a clear error when the run has no checkpoint yet
    source = load_source(str(run))
    state = source.state or {}
    cfg = state.get("config", {})
    summary = {}
    if (run / "summary.json").is_file():
        summary = json.loads((run / "summary.json").read_text())
    titles = (
        "Configuration",
        "Layers",
        "Training curves",
        "Confusion matrix",
        "First-layer filters",
        "Feature maps of a test image",
        "Most confident mistakes",
    )
    sections = {k: _Section(k, t) for k, t in zip(SECTIONS, titles)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _config(sections["config"], run, cfg)
        _layers(sections["layers"], source)
        _curves(sections["curves"], run, tmp, cfg)
        _confusion_section(sections["confusion"], run, tmp)
        _filters(sections["filters"], source, tmp)
        test = _test_images(cfg, source, test_limit)
        _features(sections["features"], source, tmp, test)
        _mistakes(sections["mistakes"], source, test, n_mistakes)
        pictures = {p.name: p.read_bytes() for p in tmp.glob("*.png") if p.name in PICTURES}
    scores = summary.get("test") or summary.get("final") or {}  # 0.1 wrote "final"
    # the task's headline score: top-1, or a dense run's mIoU / mAP@0.5
    shown = next(((k, scores[k]) for k in ("top1", "miou", "map_50")
                  if isinstance(scores.get(k), (int, float))), None)  # fmt: skip
    names = {"top1": "top-1", "miou": "mIoU", "map_50": "mAP@0.5"}
    head = (
        f"{html.escape(str(state.get('model_name', '')))} on "
        f"{html.escape(str(cfg.get('data', '')))}: "
        + (f"test {names[shown[0]]} {shown[1]:.2f}%" if shown else "no test score")
        + f", {summary.get('epochs', '?')} epochs, status {summary.get('status', '?')}"
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>cnnlab report: {html.escape(run.name)}</title><style>{_STYLE}</style></head>"
        f'<body><h1>{html.escape(run.name)}</h1><p class="meta">{head}<br>'
        f"report written {time.strftime('%Y-%m-%d %H:%M:%S')} by cnnlab</p>\n"
        + "\n".join(s.html() for s in sections.values())
        + "</body></html>\n"
    )
    return page, pictures


def build_report(run, out=None, **kwargs) -> Path:
    """Write ``report.html`` (and ``filters.png``, ``features.png``) into the run folder
    ``run`` (the report to ``out`` instead when given); returns the report's path."""
    from cnnlab._util import atomic_write

    page, pictures = render_report(run, **kwargs)
    for name, data in pictures.items():
        atomic_write(Path(run) / name, data)
    return atomic_write(Path(out) if out else Path(run) / "report.html", page)


def write_report(folder, result) -> None:
    """An ``on_finish`` hook for :func:`cnnlab.training.trainer.train`: the run's report,
    written through its :class:`~cnnlab.training.run_folder.RunFolder`. A run that left no
    checkpoint gets none; a report that cannot be made is a note, never a failed run."""
    from rich.console import Console

    from cnnlab.errors import CnnlabError

    if not (folder.file("best.pt").is_file() or folder.file("last.pt").is_file()):
        return
    try:
        page, pictures = render_report(folder.path)
    except CnnlabError as e:
        Console(emoji=False, stderr=True).print(
            f"note: no report.html: {e.message}", highlight=False
        )
        return
    for name, data in pictures.items():
        folder.write_bytes(name, data)
    folder.write_text("report.html", page)


def _config(sec, run: Path, cfg: dict) -> None:
    path = run / "config.yaml"
    text = path.read_text() if path.is_file() else json.dumps(cfg, indent=2)
    n = len(text.splitlines())
    sec.body.append(
        f"<details><summary>config.yaml ({n} lines)</summary><pre>{html.escape(text)}</pre>"
        "</details>"
    )


def _layers(sec, source) -> None:
    import cnnlab

    s = cnnlab.summary(source.model, source.input_size, model_name=source.name)
    t = s.totals
    sec.body.append(
        f"<p>{len(s.layers)} rows, {t['params']:,} parameters, {t['macs']:,} MACs "
        f"at {'x'.join(map(str, source.input_size))}.</p>"
    )
    sec.body.append(f'<div class="scroll">{s.to_html()}</div>')


def _png(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _missing(sec, why: str) -> None:
    sec.body.append(f'<p class="missing">{html.escape(why)}</p>')


def _curves(sec, run: Path, tmp: Path, cfg: dict) -> None:
    from cnnlab.viz.plots import plot_history

    pngs = [_png(run / "loss.png"), _png(run / "accuracy.png")]
    if not all(pngs):
        history = _read_history(run)
        if not history:
            return _missing(sec, "no metrics.jsonl in the run folder: no epoch finished")
        paths = plot_history(history, tmp, title=f"{cfg.get('model', '')} on {cfg.get('data', '')}")
        pngs = [p.read_bytes() for p in paths]
    sec.body.append(
        '<div class="pair">'
        + _img(pngs[0], "loss per epoch")
        + _img(pngs[1], "accuracy per epoch")
        + "</div>"
    )


def _confusion_section(sec, run: Path, tmp: Path) -> None:
    from cnnlab.viz.plots import plot_confusion

    png = _png(run / "confusion.png")
    if png is None:
        rows, names = _confusion(run)
        if rows is None:
            return _missing(sec, "no confusion.csv in the run folder: the run did not finish")
        png = plot_confusion(rows, names, tmp / "confusion.png").read_bytes()
    sec.body.append(_img(png, "confusion matrix"))


def _filters(sec, source, tmp: Path) -> None:
    from cnnlab.viz.filters import filter_tiles, plot_filter_grid
    from cnnlab.viz.source import get_conv

    name, layer = get_conv(source.model, None)
    tiles, mode = filter_tiles(layer.weight)
    w = layer.weight
    path = tmp / "filters.png"
    plot_filter_grid(
        tiles,
        path,
        f"{name}: {w.shape[0]} filters {w.shape[2]}x{w.shape[3]}x"
        f"{w.shape[1]} ({'RGB' if mode == 'rgb' else 'mean over inputs'})",
    )
    sec.body.append(
        f"<p>{html.escape(name)}: {w.shape[0]} kernels of "
        f"{w.shape[1]}x{w.shape[2]}x{w.shape[3]}, each normalised on its own.</p>"
        + _img(path.read_bytes(), "first-layer filters")
    )


def _test_images(cfg: dict, source, limit: int):
    """The first ``limit`` test images and labels of the run's dataset, or the reason why not."""
    from cnnlab.data import load_dataset
    from cnnlab.errors import CnnlabError

    try:
        ds = load_dataset(cfg.get("data", ""), split="test", data_dir=cfg.get("data_dir"))
    except CnnlabError as e:
        return f"the test images of {cfg.get('data')!r} could not be loaded: {e.message}"
    if getattr(ds, "task", None) in ("segmentation", "detection"):  # masks or boxes, no labels
        return (
            f"{cfg.get('data')!r} is a {ds.task} set: this section is for classifiers (the "
            f"run folder's examples_test.png shows the {ds.task} of the first test images)"
        )
    if tuple(ds.images.shape[-2:]) != tuple(source.data_hw):
        return (
            f"the test images are {tuple(ds.images.shape[1:])}, the model was trained on "
            f"{source.data_hw}"
        )
    return ds.subset(slice(0, limit))


def _features(sec, source, tmp: Path, test) -> None:
    import cnnlab
    from cnnlab.viz.features import feature_maps, fmt_rf, plot_features, stage_ends

    if isinstance(test, str):
        return _missing(sec, test)
    img = test.images[0]
    x = source.pipeline(img[None])
    s = cnnlab.summary(source.model, tuple(x.shape[1:]))
    maps = feature_maps(source.model, x, stage_ends(s, source.model), s)
    label = test.classes[int(test.labels[0])]
    path = tmp / "features.png"
    shown = img.permute(1, 2, 0).numpy()
    plot_features(shown, maps, path, f"test image 0 ({label}): feature maps", max_maps=16)
    items = "".join(
        f"<li>{html.escape(m.name)}: {'x'.join(map(str, m.shape))} {html.escape(fmt_rf(m))}</li>"
        for m in maps.values()
    )
    sec.body.append(f"<ul>{items}</ul>" + _img(path.read_bytes(), "feature maps"))


def _mistakes(sec, source, test, n: int) -> None:
    from cnnlab.viz.plots import _pyplot

    if isinstance(test, str):
        return _missing(sec, test)
    probs = []
    with torch.inference_mode():
        for start in range(0, len(test), 256):
            out = source.model(source.pipeline(test.images[start : start + 256]))
            out = out[0] if isinstance(out, (tuple, list)) else out
            probs.append(torch.softmax(out.float(), 1))
    p = torch.cat(probs)
    conf, pred = p.max(1)
    wrong = (pred != test.labels).nonzero().flatten()
    sec.body.append(
        f"<p>{len(wrong)} of the first {len(test)} test images are misclassified; "
        f"the {min(n, len(wrong))} most confident mistakes:</p>"
    )
    if not len(wrong):
        return None
    order = wrong[conf[wrong].argsort(descending=True)][:n]
    plt = _pyplot()
    figs = []
    import io

    for i in order.tolist():
        img = test.images[i].permute(1, 2, 0).numpy()
        buf = io.BytesIO()
        plt.imsave(
            buf,
            img.squeeze(-1) if img.shape[2] == 1 else img,
            format="png",
            cmap="gray" if img.shape[2] == 1 else None,
        )
        true, guess = test.classes[int(test.labels[i])], test.classes[int(pred[i])]
        figs.append(
            f"<figure>{_img(buf.getvalue(), f'test image {i}')}<figcaption>#{i}: "
            f"{html.escape(guess)} {100 * float(conf[i]):.1f}%<br>(true: "
            f"{html.escape(true)})</figcaption></figure>"
        )
    sec.body.append(f'<div class="grid">{"".join(figs)}</div>')
    return None
