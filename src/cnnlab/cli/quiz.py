"""``cnnlab quiz table`` and ``cnnlab quiz shape``: exercises that grade themselves."""

from __future__ import annotations

import sys

EPILOG = """examples:
  cnnlab quiz table                          seed 001's AlexNet table with ? cells; answer them
  cnnlab quiz table resnet18 --input 3x32x32 --blank shape,rf --seed 3
  cnnlab quiz table --answers mine.csv       grade a file (CSV: layer,column,answer or one
                                             column per table column; YAML: conv1: {memory: 784})
  cnnlab quiz table --key                    the answer sheet, with the working
  cnnlab quiz shape --n 10 --seed 7          ten random problems, the same for the same seed
  cnnlab quiz shape --n 10 --seed 7 --answers mine.yaml   (YAML: 1: 64x27x27, or CSV problem,answer)

Grading: shapes and receptive fields exactly; memory (KB = 1024 B), params and MACs when the
answer is the exact value rounded to the digits you wrote, and within 15% (150M or 149.5M for
149,520,384, not 145M; 3.9 or 4 KB for 3.9 KB; 37,753k for 37,752,832, not 37,749k); k, M, G
and thousands commas are allowed. Wrong cells are shown with the right value and the working."""


def register(sub, formatter_class) -> None:
    q = sub.add_parser(
        "quiz",
        help="exercises: the lectures' layer table with blanks, random shape problems; graded",
        description="Make an exercise, take the answers (typed, or --answers FILE) and grade "
        "each with its working.",
        epilog=EPILOG,
        formatter_class=formatter_class,
    )
    qs = q.add_subparsers(dest="quiz_kind", metavar="KIND")
    t = qs.add_parser("table", help="a model's layer table with cells blanked",
                      epilog=EPILOG, formatter_class=formatter_class)  # fmt: skip
    t.add_argument("model", nargs="?", default="alexnet", metavar="MODEL",
                   help="zoo name or module:factory (default: alexnet, as seed 001)")  # fmt: skip
    t.add_argument("--input", "-i", metavar="CxHxW", help="input size (alexnet: 3x227x227)")
    t.add_argument("--blank", default="memory,params,macs,shape,rf", metavar="COLUMNS",
                   help="columns whose cells may be asked (default: all five)")  # fmt: skip
    _common(t)
    t.set_defaults(func=run_table)
    s = qs.add_parser("shape", help="random conv / pool / receptive-field problems",
                      epilog=EPILOG, formatter_class=formatter_class)  # fmt: skip
    s.add_argument("--n", type=int, default=10, help="number of problems (default 10)")
    _common(s)
    s.set_defaults(func=run_shape)
    q.set_defaults(func=lambda args: q.print_help() or 2)


def _common(p) -> None:
    p.add_argument("--seed", "-s", type=int, default=0, help="which exercise (default 0)")
    p.add_argument("--answers", "-a", metavar="FILE", help="grade this CSV or YAML file")
    p.add_argument("--key", action="store_true", help="print the answer sheet and stop")


def _ask(quiz, unit_of) -> dict[str, str]:
    """Prompt for each ? cell on stdin; a malformed answer is asked again."""
    from cnnlab.errors import ConfigError
    from cnnlab.teaching.quiz import check

    answers = {}
    for c in quiz.blanks:
        while True:
            sys.stdout.write(f"{c.key} ({unit_of(c)})? ")
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                raise ConfigError(
                    f"no answer for {c.key}: the input ended",
                    "answer every ? cell, or use --answers FILE",
                )
            try:
                check(c, line.strip())
            except ValueError as e:
                print(f"  {e}")
                continue
            answers[c.key] = line.strip()
            break
    return answers


def _run(quiz, text: str, args, unit_of) -> int:
    from cnnlab.teaching.quiz import grade, key_sheet, read_answers, report

    if args.key:
        sys.stdout.write(key_sheet(quiz))
        return 0
    answers = read_answers(quiz, args.answers) if args.answers else None
    sys.stdout.write(text)
    if answers is None:
        print()
        answers = _ask(quiz, unit_of)
    print()
    sys.stdout.write(report(quiz, grade(quiz, answers)))
    return 0


def run_table(args) -> int:
    from cnnlab._util import parse_input
    from cnnlab.teaching.quiz import UNITS, table_quiz, table_text

    dims = parse_input(args.input) if args.input else None
    blank = [c.strip() for c in args.blank.split(",") if c.strip()]
    quiz = table_quiz(args.model, dims, blank, args.seed)
    return _run(quiz, table_text(quiz), args, lambda c: UNITS[c.column].split(" (")[0])


def run_shape(args) -> int:
    from cnnlab.teaching.quiz import shape_quiz, shape_text

    quiz = shape_quiz(args.n, args.seed)
    return _run(quiz, shape_text(quiz), args, lambda c: c.measure)
