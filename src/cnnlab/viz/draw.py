"""Architecture drawings: the block diagram the lecture slides draw, from the summary.

Every feature map a layer outputs is a box (a cuboid: height from H, depth from W, thickness
from C, each on a log scale), labelled with the layer's kernel/stride above and its output
shape below. The structure comes from :func:`cnnlab.summary`'s rows and the module names:

- a module whose rows end in a ``torch.cat`` of several sub-modules is an Inception module:
  its branches are drawn side by side (stacked), split before and merged at a concat node;
- a module with a ``+`` row is a residual block: its main path runs along the strip and an
  arrow jumps from its input to the ``+`` node, carrying the shortcut's own layers if any;
- a module that starts with a ``torch.cat`` (DenseNet's dense layer, whose input is the concat
  of every earlier output) gets an arrow from its concat node to the next layer's, the
  features it passes on unchanged;
- identical neighbouring blocks (the same layers at the same sizes) are drawn once with
  "x N", the way papers tabulate ResNet-152's 36 bottlenecks.

Element-wise layers (batch norm, ReLU, dropout, LRN) change no shape and are left out, as the
slides leave them out. The drawing is a list of primitives rendered to SVG directly (fast, no
matplotlib) or to PNG through matplotlib.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html import escape

# ---------------------------------------------------------------------------- structure

_SHORTCUT = re.compile(r"(^|\.)(downsample|shortcut|skip|proj|residual)(\.|$)", re.I)
_KEEP_TYPES = ("Linear", "Flatten")


@dataclass
class Box:
    row: object  # analysis.summary.LayerRow

    @property
    def merge(self) -> str | None:
        n = self.row.name
        if n.endswith(" (add)") or n.endswith(" (iadd)"):
            return "+"
        if n.endswith(" (cat)"):
            return "C"
        return None


@dataclass
class Seq:
    items: list


@dataclass
class Par:  # Inception: branches side by side, then a merge
    branches: list
    merge: Box


@dataclass
class Res:  # residual: main path, optional shortcut layers, the + node
    main: Seq
    shortcut: Seq
    merge: Box


@dataclass
class Dense:  # a dense layer: concat node first, then its layers
    merge: Box
    body: Seq


@dataclass
class Repeat:
    item: object
    times: int
    names: list = field(default_factory=list)


def _drawn(row) -> bool:
    """Rows the slides draw: layers with a kernel (conv, pool), FC layers, merges, and
    anything that changes the shape (a flatten, a padding shortcut)."""
    if row.name.endswith((" (add)", " (iadd)", " (cat)")):
        return True
    if row.kernel and row.type not in ("LocalResponseNorm", "CrossMapLRN2d"):
        return True
    if row.type in _KEEP_TYPES:
        return True
    if row.input_shape and row.output_shape and list(row.input_shape) != list(row.output_shape):
        return row.type not in ("Tensor.chunk", "Tensor.getitem", "Tensor.split")
    return False


def _owner(name: str) -> str:
    return name.split(" (", 1)[0]


def _child_key(name: str, prefix: str) -> str:
    """The child of ``prefix`` that row ``name`` lives in (``""`` for ``prefix``'s own)."""
    owner = _owner(name)
    if owner == prefix:
        return "" if " (" in name else owner.rsplit(".", 1)[-1]
    rest = owner[len(prefix) + 1 :] if prefix else owner
    return rest.split(".", 1)[0]


def build_structure(rows: list, prefix: str = ""):
    """The nested Seq/Par/Res/Dense/Box tree of the drawn ``rows`` under module ``prefix``."""
    groups: list[tuple[str, list]] = []
    for r in rows:
        key = _child_key(r.name, prefix)
        if key == "" or not groups or groups[-1][0] != key:
            groups.append((key, [r]))
        else:
            groups[-1][1].append(r)
    items: list[tuple[str, object]] = []  # (child key or "" for the module's own rows, item)
    for key, rs in groups:
        if key == "":
            items.extend(("", Box(r)) for r in rs)
            continue
        path = f"{prefix}.{key}" if prefix else key
        if len(rs) == 1 and rs[0].name == path:
            items.append((key, Box(rs[0])))
        else:
            sub = build_structure(rs, path)
            if not (isinstance(sub, Seq) and not sub.items):
                items.append((key, sub))
    merges = [it for k, it in items if not k and it.merge]
    if prefix and merges and not any(k for k, _ in items):
        # only a merge of element-wise work (AlexNet 2012's LRN on two GPU halves): nothing
        # that changes a feature map is inside, so the strip shows nothing for it
        return Seq([it for k, it in items if not it.merge])
    if prefix and merges:
        m = merges[-1]
        rest = [(k, it) for k, it in items if it is not m]
        if m.merge == "C" and items[0][1] is m:  # concat first: a dense layer
            return Dense(m, Seq([it for _, it in rest]))
        children = [it for k, it in rest if k]
        if (
            m.merge == "C"
            and items[-1][1] is m
            and len(children) >= 2
            and len(rest) == len(children)
            and len({_first_input(c) for c in children}) == 1
        ):  # every child a branch fed the same input: Inception (DenseNet's block-end concat
            # joins layers that ran one after another)
            return Par([b if isinstance(b, Seq) else Seq([b]) for b in children], m)
        if m.merge == "+":
            main = [it for k, it in rest if not _SHORTCUT.search(k)]
            short = [it for k, it in rest if k and _SHORTCUT.search(k)]
            return Res(Seq(main), Seq(short), m)
    # merges we do not recognise (AlexNet's two-GPU chunk/cat) stay in line
    return Seq([it for _, it in items])


def _first_input(item):
    """The input shape of the first layer (not a merge) in ``item``."""
    if isinstance(item, Box):
        return None if item.merge else tuple(item.row.input_shape or ())
    if isinstance(item, Seq):
        for it in item.items:
            shape = _first_input(it)
            if shape is not None:
                return shape
        return None
    if isinstance(item, Dense):
        return _first_input(item.body)
    if isinstance(item, Res):
        return _first_input(item.main)
    if isinstance(item, Par):
        return _first_input(item.branches[0])
    if isinstance(item, Repeat):
        return _first_input(item.item)
    return None


def _signature(item):
    if isinstance(item, Box):
        r = item.row
        shape = r.output_shape if item.merge != "C" else None  # dense concat widths grow
        return ("B", r.type, tuple(r.kernel or ()), tuple(r.stride or ()), tuple(shape or ()))
    if isinstance(item, Seq):
        return ("S", tuple(_signature(i) for i in item.items))
    if isinstance(item, Par):
        return ("P", tuple(_signature(b) for b in item.branches), _signature(item.merge))
    if isinstance(item, Res):
        return ("R", _signature(item.main), _signature(item.shortcut))
    if isinstance(item, Dense):
        return ("D", _signature(item.body))
    if isinstance(item, Repeat):
        return ("X", _signature(item.item), item.times)
    return ("?",)


def collapse(item):
    """Identical neighbouring blocks -> one :class:`Repeat` (boxes are never collapsed)."""
    if isinstance(item, Seq):
        out = []
        for it in (collapse(i) for i in item.items):
            prev = out[-1] if out else None
            base = prev.item if isinstance(prev, Repeat) else prev
            if (
                not isinstance(it, Box)
                and base is not None
                and not isinstance(base, Box)
                and _signature(base) == _signature(it)
            ):
                if isinstance(prev, Repeat):
                    prev.times += 1
                else:
                    out[-1] = Repeat(prev, 2)
            else:
                out.append(it)
        return Seq(out)
    if isinstance(item, Par):
        return Par([collapse(b) for b in item.branches], item.merge)
    if isinstance(item, Res):
        return Res(collapse(item.main), collapse(item.shortcut), item.merge)
    if isinstance(item, Dense):
        return Dense(item.merge, collapse(item.body))
    return item


# ------------------------------------------------------------------------------- layout

COLORS = {
    "conv": "#9ecae1",
    "pool": "#fdae6b",
    "fc": "#bcbddc",
    "other": "#d9d9d9",
    "merge": "#ffffff",
}
GAP = 14  # between boxes
FONT = 9


@dataclass
class Canvas:
    shapes: list = field(default_factory=list)  # ("poly", pts, fill) ("text", x, y, s, size,
    # anchor, weight) ("line", pts, arrow) ("circle", x, y, r, label)
    width: float = 0
    height: float = 0


def _kind(row) -> str:
    t = row.type.lower()
    if "conv" in t:
        return "conv"
    if "pool" in t:
        return "pool"
    if row.type == "Linear":
        return "fc"
    return "other"


def _label(row) -> str:
    kind = _kind(row)
    k = row.kernel
    s = row.stride
    if kind in ("conv", "pool") and k:
        ks = f"{k[0]}" if len(set(k)) == 1 else "x".join(map(str, k))
        ks = f"{ks}x{ks}" if len(set(k)) == 1 and len(k) == 2 else ks
        st = f"/{s[0]}" if s and len(set(s)) == 1 else ""
        t = row.type.lower()
        name = "conv" if kind == "conv" else ("max pool" if "max" in t else "avg pool")
        return f"{name} {ks}{st}"
    if kind == "fc":
        return "fc"
    return row.type.split(".")[-1].lower()


def _shape(row) -> str:
    return "x".join(map(str, row.output_shape or []))


def _log(v: float) -> float:
    return math.log2(max(1.0, float(v)) + 1)


def _dims(row):
    """(front width, front height, depth) of a row's cuboid."""
    shp = row.output_shape or [1]
    if len(shp) == 3:
        c, h, w = shp
        return 3 + 2.2 * _log(c), 8 + 7 * _log(h), 2 + 2.2 * _log(w)
    n = shp[-1] if shp else 1
    return 6, 10 + 6 * _log(n), 0


class _Layout:
    """Places items left to right on one strip, returning (width, height above, below) and
    appending the primitives; (x, y) is the left end of the item's centre line."""

    def __init__(self):
        self.c = Canvas()
        self.boxes = 0

    def size(self, item) -> tuple[float, float, float]:
        if isinstance(item, Box):
            if item.merge:
                return 16, 8, 8
            w, h, d = _dims(item.row)
            label_w = max(len(_label(item.row)), len(_shape(item.row))) * FONT * 0.55
            return max(w + d, label_w), h / 2 + d + FONT + 4, h / 2 + FONT + 4
        if isinstance(item, Seq):
            sizes = [self.size(i) for i in item.items] or [(0, 0, 0)]
            w = sum(s[0] for s in sizes) + GAP * max(0, len(sizes) - 1)
            return w, max(s[1] for s in sizes), max(s[2] for s in sizes)
        if isinstance(item, Par):
            sizes = [self.size(b) for b in item.branches]
            w = max(s[0] for s in sizes) + 2 * GAP + 16
            total = sum(s[1] + s[2] for s in sizes) + GAP * (len(sizes) - 1)
            return w + GAP, total / 2, total / 2
        if isinstance(item, Res):
            mw, ma, mb = self.size(item.main)
            sw, sa, sb = self.size(item.shortcut) if item.shortcut.items else (0, 0, 0)
            w = max(mw, sw) + GAP + 16
            return w, max(ma, 10) + 14 + (sa + sb if item.shortcut.items else 0), mb
        if isinstance(item, Dense):
            bw, ba, bb = self.size(item.body)
            return 16 + GAP + bw, max(ba, 8) + 14, bb
        if isinstance(item, Repeat):
            w, a, b = self.size(item.item)
            return w + 12, a + 8, b + FONT + 6
        raise TypeError(item)

    def place(self, item, x: float, y: float) -> float:
        """Draw ``item`` with its centre line at ``y`` starting at ``x``; return its end x."""
        add = self.c.shapes.append
        if isinstance(item, Box):
            if item.merge:
                add(("circle", x + 8, y, 7, item.merge))
                return x + 16
            return self._cuboid(item.row, x, y)
        if isinstance(item, Seq):
            end = x
            for i, it in enumerate(item.items):
                if i:
                    add(("line", [(end, y), (end + GAP, y)], True))
                    end += GAP
                end = self.place(it, end, y)
            return end
        if isinstance(item, Par):
            sizes = [self.size(b) for b in item.branches]
            total = sum(s[1] + s[2] for s in sizes) + GAP * (len(sizes) - 1)
            top = y - total / 2
            bw = max(s[0] for s in sizes)
            merge_x = x + GAP + bw + GAP
            for b, (w, a, below) in zip(item.branches, sizes):
                by = top + a
                bx = x + GAP + (bw - w) / 2
                add(("line", [(x, y), (bx, by)], True))
                end = self.place(b, bx, by)
                add(("line", [(end, by), (merge_x, y)], True))
                top += a + below + GAP
            return self.place(item.merge, merge_x, y)
        if isinstance(item, Res):
            mw, ma, _ = self.size(item.main)
            end = self.place(item.main, x + GAP / 2, y)
            add(("line", [(x, y), (x + GAP / 2, y)], False))
            merge_x = max(end, x) + GAP / 2
            add(("line", [(end, y), (merge_x, y)], True))
            arc_y = y - max(ma, 10) - 8
            if item.shortcut.items:
                sw, sa, sb = self.size(item.shortcut)
                sy = arc_y - sb
                sx = x + (merge_x - x - sw) / 2
                add(("line", [(x, y), (x, sy), (sx, sy)], True))
                send = self.place(item.shortcut, sx, sy)
                add(("line", [(send, sy), (merge_x + 8, sy), (merge_x + 8, y - 7)], True))
            else:
                add(
                    ("line", [(x, y), (x, arc_y), (merge_x + 8, arc_y), (merge_x + 8, y - 7)], True)
                )
            return self.place(item.merge, merge_x, y)
        if isinstance(item, Dense):
            end = self.place(item.merge, x, y)
            add(("line", [(end, y), (end + GAP, y)], True))
            body_end = self.place(item.body, end + GAP, y)
            _, ba, _ = self.size(item.body)
            arc_y = y - max(ba, 8) - 6
            # the concat's input goes on unchanged to the next concat: the dense connection
            add(
                (
                    "line",
                    [
                        (x + 8, y - 7),
                        (x + 8, arc_y),
                        (body_end + GAP + 8, arc_y),
                        (body_end + GAP + 8, y - 7),
                    ],
                    True,
                )
            )
            return body_end
        if isinstance(item, Repeat):
            w, a, b = self.size(item.item)
            add(("rect", x, y - a + 2, w + 12, a + b - 4))
            end = self.place(item.item, x + 6, y)
            add(
                (
                    "text",
                    x + (w + 12) / 2,
                    y + b + FONT - 2,
                    f"x {item.times}",
                    FONT + 1,
                    "middle",
                    "bold",
                )
            )
            return end + 6
        raise TypeError(item)

    def _cuboid(self, row, x, y) -> float:
        add = self.c.shapes.append
        self.boxes += 1
        w, h, d = _dims(row)
        label_w = max(len(_label(row)), len(_shape(row))) * FONT * 0.55
        full = max(w + d, label_w)
        x0 = x + (full - w - d) / 2
        top, bottom = y - h / 2, y + h / 2
        color = COLORS[_kind(row)]
        add(("poly", [(x0, top), (x0 + w, top), (x0 + w, bottom), (x0, bottom)], color))
        if d:
            add(
                (
                    "poly",
                    [(x0, top), (x0 + d, top - d), (x0 + w + d, top - d), (x0 + w, top)],
                    color,
                )
            )
            add(
                (
                    "poly",
                    [
                        (x0 + w, top),
                        (x0 + w + d, top - d),
                        (x0 + w + d, bottom - d),
                        (x0 + w, bottom),
                    ],
                    color,
                )
            )
        add(("text", x + full / 2, top - d - 3, _label(row), FONT, "middle", "normal"))
        add(("text", x + full / 2, bottom + FONT + 1, _shape(row), FONT - 1, "middle", "normal"))
        return x + full


@dataclass
class Drawing:
    canvas: Canvas
    title: str
    boxes: int  # feature-map boxes drawn
    structure: object


def layout(summary, title: str | None = None) -> Drawing:
    """Lay out ``summary`` (a :class:`cnnlab.analysis.Summary`) as a drawing."""
    rows = [r for r in summary.layers if _drawn(r)]
    tree = collapse(build_structure(rows))
    lay = _Layout()
    inp = list(summary.input_size)
    w, above, below = lay.size(tree)
    margin = 20
    title = title or f"{summary.model_name}  (input {'x'.join(map(str, inp))})"
    y = margin + 2 * FONT + 8 + above
    lay.c.shapes.append(("text", margin, margin + FONT, title, FONT + 3, "start", "bold"))
    end = lay.place(tree, margin, y)
    lay.c.width = max(end, margin + len(title) * 7) + margin
    lay.c.height = y + below + margin
    return Drawing(lay.c, title, lay.boxes, tree)


# ----------------------------------------------------------------------------- renderers


def to_svg(d: Drawing) -> str:
    c = d.canvas
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{c.width:.0f}" height="{c.height:.0f}" '
        f'viewBox="0 0 {c.width:.1f} {c.height:.1f}" font-family="DejaVu Sans, Arial, '
        'sans-serif">',
        '<defs><marker id="a" markerWidth="6" markerHeight="6" refX="5" refY="3" '
        'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#555"/></marker></defs>',
        f'<rect width="100%" height="100%" fill="white"/><title>{escape(d.title)}</title>',
    ]
    for s in c.shapes:
        kind = s[0]
        if kind == "poly":
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in s[1])
            out.append(f'<polygon points="{pts}" fill="{s[2]}" stroke="#333" stroke-width="0.6"/>')
        elif kind == "rect":
            _, x, y, w, h = s
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                'fill="none" stroke="#999" stroke-dasharray="4 3" rx="4"/>'
            )
        elif kind == "text":
            _, x, y, text, size, anchor, weight = s
            out.append(
                f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
                f' font-weight="{weight}">{escape(text)}</text>'
            )
        elif kind == "line":
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in s[1])
            marker = ' marker-end="url(#a)"' if s[2] else ""
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="#555" stroke-width="0.9"{marker}/>'
            )
        elif kind == "circle":
            _, x, y, r, label = s
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="white" stroke="#333"/>'
                f'<text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="{FONT + 1}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def to_png(d: Drawing, dpi: int = 100) -> bytes:
    """The same primitives through matplotlib (PNG); very long strips are scaled down."""
    from matplotlib.patches import Circle, FancyArrowPatch, Polygon, Rectangle
    from matplotlib.path import Path as MPath

    from cnnlab.viz.figure import figure_bytes
    from cnnlab.viz.plots import _pyplot

    plt = _pyplot()
    c = d.canvas
    scale = min(1.0, 30000 / max(c.width, 1))  # keep the bitmap under ~30k pixels wide
    fig = plt.figure(figsize=(c.width * scale / 72, c.height * scale / 72), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, c.width)
    ax.set_ylim(c.height, 0)
    ax.set_axis_off()
    fs = scale  # font sizes in points follow the 1 px = 1 pt canvas
    for s in c.shapes:
        kind = s[0]
        if kind == "poly":
            ax.add_patch(Polygon(s[1], closed=True, facecolor=s[2], edgecolor="#333", lw=0.5))
        elif kind == "rect":
            _, x, y, w, h = s
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="#999", ls="--", lw=0.6))
        elif kind == "text":
            _, x, y, text, size, anchor, weight = s
            ha = {"middle": "center", "start": "left", "end": "right"}[anchor]
            ax.text(x, y, text, fontsize=size * fs, ha=ha, va="baseline", fontweight=weight)
        elif kind == "line":
            pts = s[1]
            codes = [MPath.MOVETO] + [MPath.LINETO] * (len(pts) - 1)
            ax.add_patch(
                FancyArrowPatch(
                    path=MPath(pts, codes),
                    arrowstyle="-|>" if s[2] else "-",
                    mutation_scale=6 * fs,
                    lw=0.8,
                    color="#555",
                )
            )
        elif kind == "circle":
            _, x, y, r, label = s
            ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="#333", lw=0.7))
            ax.text(x, y, label, fontsize=(FONT + 1) * fs, ha="center", va="center")
    return figure_bytes(fig, "png", dpi=dpi)


def draw(model, input_size, path, *, model_name: str | None = None):
    """Draw ``model`` at ``input_size`` (C, H, W) to ``path`` (.svg or .png); returns the
    :class:`Drawing`."""
    from pathlib import Path

    import cnnlab
    from cnnlab._util import atomic_write
    from cnnlab.errors import ConfigError

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ConfigError(f"cannot draw to {path.name}: give a .svg or .png file name")
    s = cnnlab.summary(model, input_size, model_name=model_name)
    d = layout(s)
    data = to_svg(d).encode() if fmt == "svg" else to_png(d)
    atomic_write(path, data)
    return d
