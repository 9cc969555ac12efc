"""cnnlab quiz: the same exercise for the same seed, graded with scripted answers (all right,
some wrong, malformed files), the stated tolerances, and the CLI (typed answers, --key, errors)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError, DataError
from cnnlab.teaching.quiz import (
    Cell,
    check,
    grade,
    parse_number,
    read_answers,
    report,
    shape_quiz,
    table_quiz,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(*args, stdin=""):
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], input=stdin,
                          capture_output=True, text=True, env=env)  # fmt: skip


def _main(*args):
    from cnnlab.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(list(args))
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def alexnet():
    return table_quiz("alexnet", seed=0)


def _write_long(path, quiz, override=None):
    override = override or {}
    lines = ["layer,column,answer"]
    for c in quiz.blanks:
        lines.append(f'{c.row},{c.column},"{override.get(c.key, c.show())}"')
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------ tolerances


def test_numbers_are_right_when_rounded_as_written():
    macs = Cell("conv4", "macs", 149_520_384, [])
    assert check(macs, "150M")[0] and check(macs, "149.5M")[0] and check(macs, "149,520,384")[0]
    assert not check(macs, "145M")[0]  # the notes' value (erratum 001-alexnet-conv4-macs)
    assert not check(macs, "0.1G")[0]  # rounded as written, but 33% off
    assert check(Cell("pool1", "macs", 1_806_336, []), "2M")[0]  # the lectures' rounding
    mem = Cell("fc8", "memory", 1000 * 4 / 1024, [])
    assert check(mem, "3.9")[0] and check(mem, "4")[0] and check(mem, "3.9 KB")[0]
    assert not check(mem, "0")[0]  # the notes' GoogLeNet fc memory
    small = Cell("x", "macs", 300_000, [])
    assert not check(small, "0M")[0] and check(small, "0.3M")[0]
    params = Cell("conv1", "params", 23_296, [])
    assert check(params, "23.3k")[0] and not check(params, "23,232")[0]  # bias left out
    assert check(params, "23296")[0] and check(params, "23k")[0] and not check(params, "24k")[0]
    fc6 = Cell("fc6", "params", 37_752_832, [])
    assert check(fc6, "37,753k")[0] and not check(fc6, "37,749k")[0]  # the notes' value
    with pytest.raises(ValueError, match="not a number"):
        check(params, "lots")
    assert parse_number("1.50k") == (1500.0, 10.0)


def test_shapes_and_receptive_fields_are_exact():
    shape = Cell("conv1", "shape", (64, 56, 56), [])
    for ok in ("64x56x56", "64 x 56 x 56", "(64, 56, 56)", "[64,56,56]", "64×56×56"):
        assert check(shape, ok)[0], ok
    assert not check(shape, "64x55x55")[0] and not check(shape, "56x56x64")[0]
    rf = Cell("pool1", "rf", 19, [])
    assert check(rf, "19")[0] and check(rf, "19x19")[0] and not check(rf, "18")[0]
    assert check(rf, "19.0")[0] and not check(rf, "18.0")[0]  # a spreadsheet's whole number
    with pytest.raises(ValueError, match="not a shape"):
        check(rf, "19.5")
    with pytest.raises(ValueError, match="not a shape"):
        check(shape, "big")


# ------------------------------------------------------------------------------ the exercises


def test_same_seed_same_exercise(alexnet):
    again = table_quiz("alexnet", seed=0)
    assert [c.key for c in again.blanks] == [c.key for c in alexnet.blanks]
    other = table_quiz("alexnet", seed=1)
    assert [c.key for c in other.blanks] != [c.key for c in alexnet.blanks]
    a, b, c = shape_quiz(8, seed=5), shape_quiz(8, seed=5), shape_quiz(8, seed=6)
    assert [x.question for x in a.blanks] == [x.question for x in b.blanks]
    assert [x.question for x in a.blanks] != [x.question for x in c.blanks]


def test_alexnet_table_holds_seed_001s_numbers(alexnet):
    cells = alexnet.cells
    assert cells[("conv1", "shape")].exact == (64, 56, 56)
    assert cells[("conv1", "memory")].exact == 784
    assert cells[("conv4", "macs")].exact == 149_520_384
    assert cells[("fc6", "params")].exact == 37_752_832
    assert cells[("pool1", "rf")].exact == 19
    assert alexnet.rows[:3] == ["conv1", "pool1", "conv2"] and alexnet.rows[-1] == "fc8"
    assert not any(c.column == "params" and c.exact == 0 for c in alexnet.blanks)


def test_blank_columns_limit_the_questions():
    q = table_quiz("lenet5", blank=["shape", "rf"], seed=2)
    assert q.blanks and {c.column for c in q.blanks} <= {"shape", "rf"}
    with pytest.raises(ConfigError, match="did you mean: macs"):
        table_quiz("lenet5", blank=["mac"])


def test_shape_problems_have_whole_answers_and_working():
    q = shape_quiz(40, seed=11)
    assert len(q.blanks) == 40
    kinds = {c.measure for c in q.blanks}
    assert {"shape", "rf", "params", "macs", "memory"} <= kinds
    for c in q.blanks:
        assert c.question.endswith("?") and c.working
        assert check(c, c.show())[0]  # the key grades itself right
    with pytest.raises(ConfigError, match="--n must be"):
        shape_quiz(0)


# ------------------------------------------------------------------------------ grading files


def test_all_right_scores_full(alexnet, tmp_path):
    answers = read_answers(alexnet, _write_long(tmp_path / "a.csv", alexnet))
    graded = grade(alexnet, answers)
    assert all(g.right for g in graded)
    assert f"score: {len(graded)}/{len(graded)} (100%)" in report(alexnet, graded)


def test_some_wrong_shows_the_working(tmp_path):
    q = table_quiz("alexnet", blank=["macs", "params"], seed=0, fraction=1.0)
    path = _write_long(tmp_path / "a.csv", q, {"conv4 macs": "145M", "fc6 params": "37,749k"})
    graded = grade(q, read_answers(q, path))
    wrong = {g.cell.key for g in graded if not g.right}
    assert wrong == {"conv4 macs", "fc6 params"}
    text = report(q, graded)
    assert "conv4 macs: you wrote 145M, the answer is 149,520,384" in text
    assert "(256*13*13) * (384*3*3)" in text  # the working
    n = len(graded)
    assert f"score: {n - 2}/{n}" in text


def test_yaml_and_wide_csv(tmp_path):
    q = table_quiz("lenet5", seed=4)
    by_row = {}
    for c in q.blanks:
        by_row.setdefault(c.row, {})[c.column] = c.show()
    import yaml

    (tmp_path / "a.yaml").write_text(yaml.safe_dump(by_row))
    assert all(g.right for g in grade(q, read_answers(q, tmp_path / "a.yaml")))
    cols = ["layer", *q.columns]
    lines = [",".join(cols)]
    for row in q.rows:
        vals = [by_row.get(row, {}).get(c, "") for c in q.columns]
        lines.append(",".join([row, *[f'"{v}"' if v else "" for v in vals]]))
    (tmp_path / "w.csv").write_text("\n".join(lines) + "\n")
    assert all(g.right for g in grade(q, read_answers(q, tmp_path / "w.csv")))
    s = shape_quiz(3, seed=1)
    (tmp_path / "s.yaml").write_text("".join(f"{c.row}: '{c.show()}'\n" for c in s.blanks))
    assert all(g.right for g in grade(s, read_answers(s, tmp_path / "s.yaml")))


def test_malformed_answer_files(alexnet, tmp_path):
    blanks = alexnet.blanks
    # missing cells
    lines = ["layer,column,answer"] + [f'{c.row},{c.column},"{c.show()}"' for c in blanks[1:]]
    (tmp_path / "m.csv").write_text("\n".join(lines))
    with pytest.raises(DataError, match=f"lacks answers for 1 cell.*{blanks[0].key}"):
        read_answers(alexnet, tmp_path / "m.csv")
    # an extra cell: one the table shows, and a row that does not exist
    shown = next(c for c in alexnet.cells.values() if not c.blank)
    full = ["layer,column,answer"] + [f'{c.row},{c.column},"{c.show()}"' for c in blanks]
    (tmp_path / "e.csv").write_text("\n".join(full + [f"{shown.row},{shown.column},1"]))
    with pytest.raises(DataError, match="extra cells.*given in the table"):
        read_answers(alexnet, tmp_path / "e.csv")
    (tmp_path / "u.csv").write_text("\n".join(full + ["conv9,shape,1x1x1"]))
    with pytest.raises(DataError, match="conv9 shape \\(unknown row"):
        read_answers(alexnet, tmp_path / "u.csv")
    (tmp_path / "c.csv").write_text("\n".join(full + ["conv1,flops,1"]))
    with pytest.raises(DataError, match="unknown column"):
        read_answers(alexnet, tmp_path / "c.csv")
    # not a number
    bad = ["layer,column,answer"] + [
        f"{c.row},{c.column},{'many' if i == 0 else repr(c.show())}" for i, c in enumerate(blanks)
    ]
    (tmp_path / "n.csv").write_text("\n".join(bad).replace("'", '"'))
    with pytest.raises(DataError, match="not a number: .*'many'"):
        read_answers(alexnet, tmp_path / "n.csv")
    # not a file we can read
    with pytest.raises(DataError, match="does not exist"):
        read_answers(alexnet, tmp_path / "none.csv")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataError, match=".csv, .yaml"):
        read_answers(alexnet, tmp_path / "a.txt")
    (tmp_path / "l.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(DataError, match="must map each row"):
        read_answers(alexnet, tmp_path / "l.yaml")
    (tmp_path / "h.csv").write_text("name,value\nx,1\n")
    with pytest.raises(DataError, match="needs a 'layer'"):
        read_answers(alexnet, tmp_path / "h.csv")


# ------------------------------------------------------------------------------ the CLI


def test_cli_key_and_file_grading(alexnet, tmp_path):
    rc, out = _main("quiz", "table", "--key")
    assert rc == 0 and "conv1 memory: 784" in out and "MACs:" in out
    path = _write_long(tmp_path / "a.csv", alexnet, {alexnet.blanks[0].key: "1"})
    rc, out = _main("quiz", "table", "--answers", str(path))
    n = len(alexnet.blanks)
    assert rc == 0 and f"score: {n - 1}/{n}" in out and "WRONG" in out
    rc, out = _main("quiz", "shape", "--n", "4", "--seed", "9", "--key")
    assert rc == 0 and out.count("\n    ") >= 4


def test_cli_typed_answers_and_bad_input(tmp_path):
    q = shape_quiz(3, seed=2)
    typed = "\n".join(["not-a-number"] + [c.show() for c in q.blanks]) + "\n"
    r = _cli("quiz", "shape", "--n", "3", "--seed", "2", stdin=typed)
    assert r.returncode == 0, r.stderr
    assert "is not a" in r.stdout and "score: 3/3 (100%)" in r.stdout  # asked again, then graded
    r = _cli("quiz", "shape", "--n", "3", "--seed", "2", stdin=q.blanks[0].show() + "\n")
    assert r.returncode == 2 and "the input ended" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.yaml").write_text("1: [unclosed\n")
    r = _cli("quiz", "shape", "--n", "3", "--answers", str(tmp_path / "bad.yaml"))
    assert r.returncode == 2 and "not valid YAML" in r.stderr and "Traceback" not in r.stderr
    from cnnlab.cli import main

    assert main(["quiz", "table", "--blank", "colour"]) == 2
    assert main(["quiz", "table", "nosuchnet"]) == 2
