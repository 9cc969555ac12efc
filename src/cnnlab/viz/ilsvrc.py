"""The ILSVRC classification chart of seeds 001 and 002: top-5 error by year and entry, with
each zoo model's depth (weight layers on the longest path) and parameter count measured from
cnnlab's own builders beside the cited error figures.

The errors are the published test-set top-5 errors; each row names its source. Entries without
a zoo model (the pre-CNN winners, 2016, 2017) are plotted with their error only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.errors import ConfigError, suggest

RUSSAKOVSKY = (
    "Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, IJCV 115 (2015)"
)


@dataclass(frozen=True)
class Entry:
    year: int
    entry: str
    top5: float  # test top-5 error, %
    source: str
    model: str | None = None  # cnnlab zoo name whose depth and params are shown
    options: dict = field(default_factory=dict)  # builder options (e.g. no auxiliary heads)


ILSVRC = [
    Entry(2010, "NEC-UIUC", 28.2, f"{RUSSAKOVSKY}: ILSVRC2010 winner (Lin et al.), no CNN"),
    Entry(2011, "XRCE", 25.8, f"{RUSSAKOVSKY}: ILSVRC2011 winner (Sanchez & Perronnin), no CNN"),
    Entry(
        2012,
        "AlexNet",
        16.4,
        "Krizhevsky et al., NIPS 2012, Table 2: 5 CNNs 16.4% (7 CNNs with extra "
        "pre-training: 15.3%)",
        "alexnet2012",
    ),
    Entry(
        2013,
        "ZFNet/Clarifai",
        11.7,
        f"{RUSSAKOVSKY}: ILSVRC2013 winner Clarifai; the ZFNet paper's own ensemble: 14.8% "
        "(Zeiler & Fergus, ECCV 2014, Table 2)",
        "zfnet",
    ),
    Entry(
        2014,
        "VGG",
        7.3,
        "Simonyan & Zisserman, ICLR 2015, Table 7: ILSVRC submission, 7 nets 7.3% "
        "(2 nets after the challenge: 6.8%)",
        "vgg16",
    ),
    Entry(
        2014,
        "GoogLeNet",
        6.67,
        "Szegedy et al., CVPR 2015, Tables 2 and 3: 6.67% (7 models, 144 crops)",
        "googlenet_paper",
        {"aux_logits": False},  # test time: the auxiliary heads are discarded
    ),
    Entry(
        2015,
        "ResNet",
        3.57,
        "He et al., CVPR 2016, Table 5: ensemble 3.57% (ResNet-152 alone, validation, Table 4: "
        "4.49%)",
        "resnet152",
    ),
    Entry(2016, "Trimps-Soushen", 2.99, "ILSVRC2016 results, image-net.org: an ensemble"),
    Entry(2017, "SENet", 2.25, "Hu et al., CVPR 2018 (Squeeze-and-Excitation Networks): 2.251%"),
]
HUMAN = (5.1, f"{RUSSAKOVSKY}: one trained annotator, 5.1% on 1,500 test images")

CHARTS = ("ilsvrc",)


def ilsvrc_rows() -> list[dict]:
    """One dict per entry: year, entry, top5, source, model, depth, params (None without a
    zoo model). Depth and params are measured from the zoo's builders on the meta device."""
    import torch

    from cnnlab.analysis.depth import weight_depth
    from cnnlab.models.registry import get_info

    rows = []
    for e in ILSVRC:
        row = {"year": e.year, "entry": e.entry, "top5": e.top5, "source": e.source}
        row.update(model=e.model, depth=None, params=None)
        if e.model:
            info = get_info(e.model)
            with torch.device("meta"):
                model = info.builder(**e.options)
            row["params"] = sum(p.numel() for p in model.parameters())
            row["depth"] = weight_depth(model, info.input_size)
        rows.append(row)
    return rows


def check_chart(name: str) -> str:
    if name not in CHARTS:
        raise ConfigError(
            f"unknown chart {name!r}", suggest(name, CHARTS) or f"charts: {', '.join(CHARTS)}"
        )
    return name


def plot_ilsvrc(rows: list[dict], path):
    """Bars of top-5 error per entry (labelled with the zoo model's depth and parameters), the
    depth on a second, logarithmic axis, and the human error as a dashed line."""
    from cnnlab.viz.figure import save_figure
    from cnnlab.viz.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.2))
    xs = range(len(rows))
    colors = ["#9e9e9e" if r["depth"] is None else "#3f72af" for r in rows]
    bars = ax.bar(xs, [r["top5"] for r in rows], color=colors, width=0.65)
    for bar, r in zip(bars, rows):
        text = f"{r['top5']:g}%"
        if r["depth"] is not None:
            text += f"\n{r['depth']} layers\n{r['params'] / 1e6:.1f}M params"
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(HUMAN[0], ls="--", color="#c0392b", lw=1)
    ax.text(len(rows) - 0.5, HUMAN[0] + 0.4, f"human {HUMAN[0]:g}%", ha="right", color="#c0392b")
    ax.set_xticks(list(xs), [f"{r['year']}\n{r['entry']}" for r in rows], fontsize=7.5)
    ax.set_ylabel("ILSVRC top-5 error (%)")
    ax.set_ylim(0, max(r["top5"] for r in rows) * 1.3)
    ax.set_title("ImageNet classification: top-5 error (cited) and depth (measured from the zoo)")
    deep = [(i, r["depth"]) for i, r in enumerate(rows) if r["depth"]]
    ax2 = ax.twinx()
    ax2.plot([i for i, _ in deep], [d for _, d in deep], "o-", color="#f08a5d", label="depth")
    ax2.set_yscale("log")
    ax2.set_ylabel("weight layers (log scale)", color="#f08a5d")
    ax2.set_ylim(1, 1000)
    fig.text(
        0.01,
        0.01,
        "errors: the sources in `cnnlab models --chart ilsvrc` / docs/models.md; "
        "depth = conv + FC layers on the longest path; GoogLeNet without its auxiliary heads",
        fontsize=7,
        color="#555555",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path, dpi=110)
