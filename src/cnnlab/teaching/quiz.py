"""Exercises that grade themselves: the lectures' layer table with cells blanked, and random
conv / pool / receptive-field problems.

Seed 001 walks AlexNet's table with "?" cells for the student to fill. :func:`table_quiz` makes
that exercise for any zoo model: it traces the model (:func:`cnnlab.summary`), keeps the rows the
lectures tabulate (conv, pool, fc), and blanks a seeded choice of cells in the chosen columns.
:func:`shape_quiz` makes ``n`` random problems, the same for the same seed. Both return a
:class:`Quiz`: cells with the exact answer and its working (from :mod:`cnnlab.arithmetic`, the
lines ``cnnlab shape`` prints), graded by :func:`grade`.

How an answer is graded (the stated tolerances):

- shapes and receptive fields: exact integers (``64x56x56``, ``(64, 56, 56)``; ``11`` or ``11x11``);
- numbers (memory in KB = 1024 B, parameters, MACs / FLOPs; ``k``, ``M``, ``G`` suffixes and
  thousands commas allowed): right when the answer is the exact value rounded to the digits
  written (``150M`` or ``149.5M`` for 149,520,384 MACs; ``3.9`` or ``4`` KB for 3.9 KB, as the
  lectures print them), and no more than 15% off (``0M`` for 0.3 M and ``0.1G`` for 149.5 M are
  wrong). So the notes' ``145M`` (AlexNet conv4) and ``37,749k`` (fc6 without its bias) are
  wrong, and so is ``23,232`` for conv1's 23,296 parameters.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.arithmetic import LayerSpec, compute_layer, receptive_field
from cnnlab.errors import ConfigError, DataError, suggest

COLUMNS = ("shape", "memory", "params", "macs", "rf")
UNITS = {
    "shape": "C x H x W (fc: features)",
    "memory": "KB of float32 activations (1 KB = 1024 B)",
    "params": "weights + bias",
    "macs": "MACs (multiply+add = 1; pooling: the lectures' flop)",
    "rf": "receptive field, pixels",
}
ROUNDED_TOL = 0.15  # a rounded answer (2M for 1.8 M, 4 KB for 3.9 KB) may be this far off
TABLE_TYPES = {"Conv2d": "conv", "MaxPool2d": "pool", "AvgPool2d": "pool", "Linear": "fc"}
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass
class Cell:
    """One question: its key (``row`` and ``column``), the exact answer and its working."""

    row: str  # conv1, pool1, fc6 ... (table) or the problem number (shape quiz)
    column: str  # a table column, or the problem's kind
    exact: int | float | tuple[int, ...]
    working: list[str]
    question: str = ""
    blank: bool = True  # False: shown in the table, not asked
    kind: str = ""  # what is measured (a COLUMNS name); default: the column

    @property
    def measure(self) -> str:
        return self.kind or self.column

    @property
    def key(self) -> str:
        return self.row if self.column == "answer" else f"{self.row} {self.column}"

    @property
    def is_shape(self) -> bool:
        return isinstance(self.exact, tuple)

    def show(self) -> str:
        """The exact answer as the table prints it."""
        if self.is_shape:
            return "x".join(map(str, self.exact))
        if self.measure == "memory":
            return f"{self.exact:,.1f}".removesuffix(".0")
        return f"{self.exact:,}"


@dataclass
class Quiz:
    title: str
    rows: list[str]  # row labels in order
    columns: list[str]
    cells: dict[tuple[str, str], Cell]
    notes: list[str] = field(default_factory=list)
    layer_names: dict[str, str] = field(default_factory=dict)  # label -> model layer name

    @property
    def blanks(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.blank]


# --------------------------------------------------------------------------------- answers


def parse_number(text) -> tuple[float, float]:
    """``"149.5M"`` -> (149_500_000, 100_000): the value and the precision it was written to."""
    s = str(text).strip().replace(",", "").replace("_", "")
    s = re.sub(r"\s*(kib|kb)$", "", s, flags=re.I)
    m = re.fullmatch(r"([+-]?)(\d+)(?:\.(\d*))?\s*([kKmMgG]?)", s)
    if not m:
        raise ValueError(f"{text!r} is not a number (write e.g. 784, 23,296, 149.5M or 23.3k)")
    sign, whole, frac, suf = m.groups()
    frac = frac or ""
    mult = _SUFFIX[suf.lower()]
    value = float(f"{sign}{whole}.{frac or 0}") * mult
    return value, mult * 10.0 ** -len(frac)


def parse_shape(text) -> tuple[int, ...]:
    s = str(text).strip()
    parts = [p for p in re.split(r"[\sx×X,()\[\]*]+", s) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a shape (write e.g. 64x56x56, or 4096 for an fc)")
    return tuple(int(p) for p in parts)


def check(cell: Cell, answer) -> tuple[bool, str]:
    """(right?, why) for one answer; ``ValueError`` if it is not a number / shape."""
    if cell.is_shape or cell.measure == "rf":
        text = str(answer).strip()
        if cell.measure == "rf" and re.fullmatch(r"\d+\.0*", text):
            text = text.split(".")[0]  # "40.0" is the whole number 40 (a CSV may write it so)
        got = parse_shape(text)
        want = cell.exact if cell.is_shape else (cell.exact,)
        if cell.measure == "rf" and len(set(got)) == 1:
            got = got[:1]  # 11x11 == 11
        return got == tuple(want), "exactly equal"
    value, precision = parse_number(answer)
    exact = float(cell.exact)
    if exact == 0:
        return value == 0, "exactly equal"
    close = abs(value - exact) <= ROUNDED_TOL * abs(exact)
    if close and abs(value - exact) <= precision / 2 + 1e-9 * abs(exact):
        return True, "rounded as written"
    return False, "it is the exact value rounded to the digits written, and within 15%"


def _load_rows(path: Path) -> list[tuple[str, str, str]]:
    """(row, column, answer) triples from a CSV (long: row/layer,column,answer; or wide: one
    column per table column) or a YAML mapping {row: {column: answer}} / {problem: answer}."""
    if not path.is_file():
        raise DataError(f"answer file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read answer file {path}: {e}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DataError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise DataError(
                f"{path} must map each row to its answers, e.g. conv1: {{memory: 784}} "
                "(shape quiz: 1: 55x55x96)"
            )
        out = []
        for row, value in data.items():
            if isinstance(value, dict):
                out += [(str(row), str(col), value[col]) for col in value]
            else:
                out.append((str(row), "", value))
        return out
    if path.suffix.lower() != ".csv":
        raise DataError(f"answer file {path} must be .csv, .yaml or .yml")
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    head = [h.strip().lower() for h in reader.fieldnames or []]
    if not head:
        raise DataError(f"{path} is empty; the first line names the columns")
    reader.fieldnames = head
    key = (
        "layer"
        if "layer" in head
        else "row"
        if "row" in head
        else "problem"
        if "problem" in head
        else None
    )
    if key is None:
        raise DataError(
            f"{path}: the header needs a 'layer' (or 'problem') column; found {', '.join(head)}",
            "e.g. layer,column,answer  or  layer,shape,memory,params,macs,rf",
        )
    out = []
    for rec in reader:
        row = (rec.get(key) or "").strip()
        if "answer" in head:  # long form
            out.append((row, (rec.get("column") or "").strip(), (rec.get("answer") or "").strip()))
        else:  # wide form: empty cells are not answers
            out += [(row, c, rec[c].strip()) for c in head if c != key and rec.get(c, "").strip()]
    return out


def read_answers(quiz: Quiz, path: str | Path) -> dict[str, str]:
    """The answers in ``path`` keyed by cell key; missing, extra or unknown cells are errors."""
    path = Path(path)
    answers: dict[str, str] = {}
    extra, bad_cols = [], []
    by_row = {c.row: c for c in quiz.blanks}
    for row, col, value in _load_rows(path):
        if not col and row in by_row and len({c.column for c in quiz.blanks if c.row == row}) == 1:
            col = by_row[row].column  # shape quiz: one answer per problem
        cell = quiz.cells.get((row, col))
        if cell is None:
            if row not in quiz.rows:
                hint = suggest(row, quiz.rows)
                extra.append(
                    f"{row} {col}".strip()
                    + (f" (unknown row; {hint})" if hint else " (unknown row)")
                )
            elif col not in quiz.columns:
                bad_cols.append(f"{row} {col!r}")
            else:
                extra.append(f"{row} {col} (not in this quiz)")
            continue
        if not cell.blank:
            extra.append(f"{cell.key} (given in the table, not asked)")
            continue
        if cell.key in answers:
            raise DataError(f"{path}: {cell.key} is answered twice")
        if value is None or str(value).strip() == "":
            continue
        answers[cell.key] = str(value)
    if bad_cols:
        raise DataError(
            f"{path}: unknown column(s): {', '.join(bad_cols)}",
            f"the columns are: {', '.join(quiz.columns)}",
        )
    if extra:
        raise DataError(f"{path} has extra cells: {', '.join(extra)}", "answer only the ? cells")
    missing = [c.key for c in quiz.blanks if c.key not in answers]
    if missing:
        raise DataError(
            f"{path} lacks answers for {len(missing)} cell(s): {', '.join(missing)}",
            "answer every ? cell (cnnlab quiz ... without --answers lists them)",
        )
    bad = []
    for c in quiz.blanks:
        try:
            check(c, answers[c.key])
        except ValueError as e:
            bad.append(f"{c.key}: {e}")
    if bad:
        raise DataError(f"{path}: not a number: " + "; ".join(bad))
    return answers


# --------------------------------------------------------------------------------- grading


@dataclass
class Graded:
    cell: Cell
    answer: str
    right: bool
    rule: str


def grade(quiz: Quiz, answers: dict[str, str]) -> list[Graded]:
    out = []
    for c in quiz.blanks:
        ok, rule = check(c, answers[c.key])
        out.append(Graded(c, answers[c.key], ok, rule))
    return out


def report(quiz: Quiz, graded: list[Graded]) -> str:
    """Each wrong cell with the right value and its working, then the score."""
    lines = []
    wrong = [g for g in graded if not g.right]
    for g in graded:
        mark = "ok   " if g.right else "WRONG"
        lines.append(f"  {mark} {g.cell.key:<22} you: {g.answer:<14} right: {g.cell.show()}")
    for g in wrong:
        lines.append("")
        lines.append(f"{g.cell.key}: you wrote {g.answer}, the answer is {g.cell.show()} "
                     f"(right when {g.rule})")  # fmt: skip
        lines += [f"    {w}" for w in g.cell.working]
    n = len(graded)
    right = n - len(wrong)
    lines.append("")
    lines.append(f"score: {right}/{n} ({100 * right / n:.0f}%)" if n else "score: nothing asked")
    return "\n".join(lines) + "\n"


def key_sheet(quiz: Quiz) -> str:
    """The answer sheet: every asked cell with its answer and working."""
    lines = [f"answer key: {quiz.title}"]
    for c in quiz.blanks:
        lines.append("")
        lines.append(f"{c.key}: {c.show()}" + (f"   ({c.question})" if c.question else ""))
        lines += [f"    {w}" for w in c.working]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- table quiz


def _spec_of(row, kind: str) -> LayerSpec:
    """The arithmetic's LayerSpec for a summary row (to reuse its working lines)."""
    if kind == "fc":
        return LayerSpec("fc", (int(math.prod(row.input_shape)),), filters=row.filters,
                         bias=row.bias > 0, name=row.name)  # fmt: skip
    common = dict(kernel=tuple(row.kernel), stride=tuple(row.stride),
                  padding=tuple(row.padding), dilation=tuple(row.dilation or (1, 1)))  # fmt: skip
    if kind == "conv":
        return LayerSpec("conv", tuple(row.input_shape), filters=row.filters, name=row.name,
                         groups=row.groups or 1, bias=row.bias > 0, **common)  # fmt: skip
    ptype = "maxpool" if row.type == "MaxPool2d" else "avgpool"
    return LayerSpec(ptype, tuple(row.input_shape), name=row.name, **common)


def _computed(row, kind: str):
    """compute_layer for the row, with the receptive field and jump of its input recovered from
    the summary (the trace knows them across branches; the arithmetic needs them given)."""
    spec = _spec_of(row, kind)
    rf_out = row.receptive_field or [1, 1]
    jump_out = row.jump or [1, 1]
    if kind == "fc":
        return compute_layer(spec, strict=False, rf=rf_out[0], jump=jump_out[0])
    s, k, d = spec.stride[0], spec.kernel[0], spec.dilation[0]
    jump_in = max(1, jump_out[0] // s)
    rf_in = max(1, rf_out[0] - (d * (k - 1)) * jump_in)
    for ceil_mode in (False, True):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = compute_layer(LayerSpec(**{**spec.__dict__, "ceil_mode": ceil_mode}),
                                strict=False, rf=rf_in, jump=jump_in)  # fmt: skip
        if list(got.output_shape) == list(row.output_shape):
            return got
    return got


def table_quiz(
    model_name: str = "alexnet",
    input_size=None,
    blank=COLUMNS,
    seed: int = 0,
    fraction: float = 0.5,
) -> Quiz:
    """Seed 001's exercise for ``model_name``: its conv / pool / fc rows with a seeded
    ``fraction`` of the cells in the ``blank`` columns turned into questions."""
    from cnnlab.analysis import summary
    from cnnlab.analysis.resolve import load_model

    blank = list(blank)
    unknown = [c for c in blank if c not in COLUMNS]
    if unknown:
        raise ConfigError(
            f"unknown --blank column(s): {', '.join(unknown)}",
            suggest(unknown[0], COLUMNS) or f"choose from: {', '.join(COLUMNS)}",
        )
    if model_name == "alexnet" and input_size is None:
        input_size = (3, 227, 227)  # seed 001's table
    model, default, name = load_model(model_name)
    dims = tuple(input_size or default or (3, 224, 224))
    s = summary(model, dims, model_name=name)
    counts = {"conv": 0, "pool": 0, "fc": 0}
    rows, cells, names = [], {}, {}
    for r in s.layers:
        kind = TABLE_TYPES.get(r.type)
        if kind is None or r.output_shape is None:
            continue
        counts[kind] += 1
        index = counts[kind] + (counts["conv"] if kind == "fc" else 0)
        label = f"{kind}{index}"
        got = _computed(r, kind)
        rows.append(label)
        names[label] = r.name
        work = got.working
        values = {
            "shape": (tuple(r.output_shape), [w for w in work if w.startswith("output")]),
            "memory": (r.activation_bytes / 1024, [w for w in work if w.startswith("memory")]),
            "params": (r.params, [w for w in work if w.startswith(("weights", "bias", "params"))]),
            "macs": (
                r.macs if kind != "pool" else r.flops,
                [w for w in work if w.lower().startswith(("macs", "flop", "pool"))],
            ),  # fmt: skip
            "rf": (int((r.receptive_field or [1])[0]), [w for w in work if "receptive" in w]),
        }
        for col, (exact, lines) in values.items():
            cells[(label, col)] = Cell(
                label, col, exact, lines or [f"{col} = {exact}"], blank=False
            )
    candidates = [
        c for c in cells.values()
        if c.column in blank and not (c.column == "params" and c.exact == 0)
    ]  # fmt: skip
    if not candidates:
        raise ConfigError(f"{name} has no cells to ask in columns {', '.join(blank)}")
    rng = random.Random(f"table/{name}/{seed}")
    k = max(1, round(fraction * len(candidates)))
    for c in rng.sample(candidates, k):
        c.blank = True
    title = f"{name} at {'x'.join(map(str, dims))}, seed {seed}"
    notes = [f"{c}: {UNITS[c]}" for c in COLUMNS]
    return Quiz(title, rows, list(COLUMNS), cells, notes, names)


def table_text(quiz: Quiz) -> str:
    """The table with ? in the asked cells."""
    head = ["layer", "(model layer)", *quiz.columns]
    grid = [head]
    for row in quiz.rows:
        line = [row, quiz.layer_names.get(row, "")]
        for col in quiz.columns:
            c = quiz.cells[(row, col)]
            line.append("?" if c.blank else c.show())
        grid.append(line)
    widths = [max(len(r[i]) for r in grid) for i in range(len(head))]
    out = [quiz.title, ""]
    for i, r in enumerate(grid):
        out.append("  ".join(v.rjust(w) if j > 1 else v.ljust(w) for j, (v, w) in
                             enumerate(zip(r, widths))).rstrip())  # fmt: skip
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append("")
    out += [f"  {n}" for n in quiz.notes]
    out.append(f"  {len(quiz.blanks)} cells to fill (?)")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------- shape quiz

SHAPE_KINDS = (
    "conv-output",
    "pool-output",
    "receptive-field",
    "conv-params",
    "conv-macs",
    "memory",
)


def _conv_problem(rng: random.Random):
    """A conv layer whose output size is a whole number: pick the output first."""
    k = rng.choice([1, 3, 3, 5, 7, 11])
    s = rng.choice([1, 1, 2, 2, 4]) if k >= 5 else rng.choice([1, 1, 2])
    p = rng.choice([0, k // 2])
    out = rng.randint(4, 60)
    n = (out - 1) * s + k - 2 * p
    if n < k or n < 4:
        return _conv_problem(rng)
    c_in = rng.choice([1, 3, 16, 32, 64, 96, 128, 256])
    c_out = rng.choice([8, 16, 32, 64, 96, 128, 192, 256, 384])
    return LayerSpec("conv", (c_in, n, n), filters=c_out, kernel=k, stride=s, padding=p)


def shape_quiz(n: int = 10, seed: int = 0) -> Quiz:
    """``n`` random problems (conv / pool output size, receptive field of a stack, a conv's
    parameters, MACs, output memory); the same ``seed`` gives the same problems."""
    if not 1 <= n <= 200:
        raise ConfigError(f"--n must be between 1 and 200, got {n}")
    rng = random.Random(f"shape/{seed}")
    cells, rows = {}, []
    for i in range(1, n + 1):
        kind = rng.choice(SHAPE_KINDS)
        if kind == "pool-output":
            k, s = rng.choice([(2, 2), (3, 2), (3, 1), (2, 1)])
            out = rng.randint(3, 56)
            size = (out - 1) * s + k
            c = rng.choice([16, 64, 96, 256, 512])
            spec = LayerSpec("maxpool", (c, size, size), kernel=k, stride=s)
            row = compute_layer(spec)
            q = (f"max-pool {k}x{k}, stride {s}, no padding, on a {c}x{size}x{size} input: "
                 "output CxHxW?")  # fmt: skip
            cell = Cell(str(i), kind, tuple(row.output_shape), row.working[:3], q)
        elif kind == "receptive-field":
            layers = [
                (rng.choice([3, 3, 5, 7, 2]), rng.choice([1, 1, 2]))
                for _ in range(rng.randint(2, 4))
            ]
            rfs = receptive_field(layers)
            q = (
                "receptive field (pixels) of one unit after the stack "
                + ", ".join(f"{k}x{k}/s{s}" for k, s in layers)
                + " (no dilation)?"
            )
            work, r, j = [], 1, 1
            for (k, s), (rf, jump) in zip(layers, rfs):
                work.append(f"R = {r} + ({k} - 1)*{j} = {rf}; jump = {j}*{s} = {jump}")
                r, j = rf, jump
            cell = Cell(str(i), kind, rfs[-1][0], work, q)
        else:
            spec = _conv_problem(rng)
            row = compute_layer(spec)
            c_in, h, _ = spec.input_shape
            desc = (f"conv {spec.filters} filters {spec.kernel}x{spec.kernel}, stride "
                    f"{spec.stride}, pad {spec.padding} on a {c_in}x{h}x{h} input")  # fmt: skip
            if kind == "conv-output":
                cell = Cell(str(i), kind, tuple(row.output_shape), row.working[:3],
                            f"{desc}: output CxHxW?")  # fmt: skip
            elif kind == "conv-params":
                cell = Cell(str(i), kind, row.params,
                            [w for w in row.working if w.startswith(("weights", "bias", "params"))],
                            f"{desc}: parameters (weights + bias)?")  # fmt: skip
            elif kind == "conv-macs":
                cell = Cell(str(i), kind, row.macs,
                            row.working[1:3] + [w for w in row.working if w.startswith("MACs")],
                            f"{desc}: MACs (multiply+add = 1)?")  # fmt: skip
            else:
                cell = Cell(str(i), kind, row.activation_bytes / 1024,
                            row.working[1:3] + [w for w in row.working if w.startswith("memory")],
                            f"{desc}: output memory in KB (float32, 1 KB = 1024 B)?")  # fmt: skip
        cell.kind = {
            "conv-output": "shape",
            "pool-output": "shape",
            "receptive-field": "rf",
            "conv-params": "params",
            "conv-macs": "macs",
            "memory": "memory",
        }[kind]
        cell.column = "answer"
        cells[(str(i), "answer")] = cell
        rows.append(str(i))
    return Quiz(f"{n} shape problems, seed {seed}", rows, ["answer"], cells)


def shape_text(quiz: Quiz) -> str:
    out = [quiz.title, ""]
    out += [f"{c.row:>3}. {c.question}" for c in quiz.blanks]
    return "\n".join(out) + "\n"
