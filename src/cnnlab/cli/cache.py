"""``cnnlab cache`` lists what cnnlab keeps in its cache folder; ``cnnlab cache clear`` empties
it. The datasets themselves (``--data-dir``) are never touched."""

from __future__ import annotations


def register(sub, formatter_class) -> None:
    p = sub.add_parser(
        "cache",
        help="list the cache (decoded datasets, extracted archives, zoo table); `clear` it",
        description="cnnlab keeps decoded datasets, extracted archives and the measured zoo "
        "table in $CNNLAB_CACHE (default ~/.cache/cnnlab). Each decoded dataset is tied to the "
        "files it was read from and is rebuilt when they change. Removing the cache only costs "
        "time; the dataset files themselves are never touched.",
        epilog="examples:\n  cnnlab cache\n  cnnlab cache clear\n",
        formatter_class=formatter_class,
    )
    p.add_argument("action", nargs="?", choices=["list", "clear"], default="list",
                   help="list (default) or clear")  # fmt: skip
    p.set_defaults(func=run)


def _bytes(n: int) -> str:
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cnnlab.data.datasets import cache

    console = Console(emoji=False)
    root = cache.cache_dir()
    if root.exists() and not root.is_dir():  # datasets would be decoded again every time
        from cnnlab.errors import ConfigError

        raise ConfigError(
            f"the cache folder {root} is a file, so nothing can be cached",
            "point $CNNLAB_CACHE at a folder (or unset it for ~/.cache/cnnlab)",
        )
    if args.action == "clear":
        n, size = cache.clear()
        console.print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} ({_bytes(size)}) "
                      f"from {root}")  # fmt: skip
        return 0
    rows = cache.entries()
    if not rows:
        console.print(f"the cache is empty ({root})")
        return 0
    t = Table(title=f"cnnlab cache: {root}")
    t.add_column("entry")
    t.add_column("size", justify="right")
    for path, size in rows:
        t.add_row(str(path.relative_to(root)), _bytes(size))
    t.add_row("[bold]total[/]", f"[bold]{_bytes(sum(s for _, s in rows))}[/]")
    console.print(t)
    console.print("remove it with: cnnlab cache clear")
    return 0
