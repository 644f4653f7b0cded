"""The layout of every table the command line prints: names are never cut or wrapped.

On a terminal, a rich table: the key columns (a SUT name, a benchmark id, a model file, a path) and
the ``nowrap`` ones (numbers) keep their longest cell on one line; the others wrap at spaces, never
narrower than their longest word (only a word longer than :data:`LONG_WORD` cells may fold). Where
the terminal is too narrow for that, each row becomes a block: its key on a line of its
own, then one ``column  value`` line for each other column. No cell is ever shortened with "…".

Elsewhere (a pipe, a file, CI) the table is plain text that depends on no width: a header line, then
one record a line, the cells separated by tabs (``grep`` finds a whole record, ``cut -f`` a column);
its title, if any, on a line before the header.

rich loads inside the functions, so importing this module stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

LONG_WORD = 20  # a wrapping column is never narrower than its longest word, or than this many cells
GAP = 2  # cells between two columns of a terminal table


@dataclass(frozen=True)
class Col:
    """A column: ``key`` cells are names (never wrapped, the headline of a row's block when the
    terminal is narrow); ``nowrap`` cells are never wrapped either (numbers, short words)."""

    header: str
    key: bool = False
    nowrap: bool = False
    justify: str = "left"

    @property
    def whole(self) -> bool:
        return self.key or self.nowrap


def console():
    """A rich Console for stdout; off a terminal it never wraps what it prints (``soft_wrap``)."""
    from rich.console import Console

    out = Console()
    out.soft_wrap = not out.is_terminal
    return out


def plain(out) -> bool:
    """Whether ``out`` (a rich Console) prints the plain form: it writes to no terminal."""
    return not out.is_terminal


def _text(cell):
    """A cell as rich Text: a str is plain text (never markup), None is "-"."""
    from rich.text import Text

    if cell is None:
        return Text("-")
    return cell if isinstance(cell, Text) else Text(str(cell))


def _flat(cell) -> str:
    """A cell's plain text on one line, for the tab-separated form."""
    text = _text(cell).plain
    return " ".join(text.replace("\t", " ").splitlines()) or "-"


def print_table(columns: Sequence[Col | str], rows: Sequence[Sequence], *, title=None,
                out=None) -> None:
    """Print ``rows`` (cells: str, rich Text or None) under ``columns`` on ``out`` (a rich Console,
    default :func:`console`), as a table, as blocks or tab-separated (see the module's doc)."""
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    out = out or console()
    if plain(out):
        lines = [] if title is None else [_flat(title)]
        lines += ["\t".join(_flat(c.header) for c in cols)]
        lines += ["\t".join(_flat(cell) for cell in row) for row in rows]
        out.file.write("".join(f"{line}\n" for line in lines))  # not rich's print: it expands tabs
        out.file.flush()
        return
    from rich.text import Text

    if title is not None:  # at the console's width: a title wraps between words, never in a name
        out.print(title if isinstance(title, Text) else Text(title))
    cells = [[_text(cell) for cell in row] for row in rows]
    widths = column_widths(cols, cells, out.width)
    if widths is None:
        _print_blocks(out, cols, cells)
    else:
        _print_grid(out, cols, cells, widths)


def _words(text: str) -> list[str]:
    return text.split() or [""]


def column_widths(cols: Sequence[Col], cells: Sequence[Sequence], width: int) -> list[int] | None:
    """Each column's width, the whole table fitting ``width`` with :data:`GAP` between columns, or
    None when it cannot: key and nowrap columns take their longest cell, and the others at least
    their longest word (at most :data:`LONG_WORD`) and their header's longest word."""
    from rich.cells import cell_len

    def lines(i: int) -> list[str]:
        return [cols[i].header] + [ln for row in cells for ln in _text(row[i]).plain.splitlines()]

    natural, least = [], []
    for i, col in enumerate(cols):
        text = lines(i)
        natural.append(max(cell_len(ln) for ln in text))
        if col.whole:
            least.append(natural[-1])
        else:
            longest_word = max(cell_len(w) for ln in text[1:] or [""] for w in _words(ln))
            header_word = max(cell_len(w) for w in _words(col.header))
            least.append(min(natural[-1], max(header_word, min(longest_word, LONG_WORD))))
    room = width - GAP * (len(cols) - 1)
    if sum(least) > room:
        return None
    widths = list(natural)
    while sum(widths) > room:  # narrow the widest column that may still narrow, one cell at a time
        i = max((i for i in range(len(cols)) if widths[i] > least[i]), key=lambda i: widths[i])
        widths[i] -= 1
    return widths


def _print_grid(out, cols: Sequence[Col], cells, widths: list[int]) -> None:
    from rich import box
    from rich.table import Column, Table

    table = Table(*(Column(c.header, width=w, no_wrap=c.whole, justify=c.justify,
                           overflow="ignore" if c.whole else "fold")
                    for c, w in zip(cols, widths)),
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  padding=(0, GAP // 2), header_style="bold")
    for row in cells:
        table.add_row(*row)
    out.print(table, crop=False)


def _print_blocks(out, cols: Sequence[Col], cells) -> None:
    """One block a row: the key cells on a line of their own (never wrapped: a terminal that is
    narrower still shows them whole, on its next line), then one ``column  value`` line for each
    other column, the values wrapping."""
    from rich.padding import Padding
    from rich.table import Column, Table
    from rich.text import Text

    keys = [i for i, c in enumerate(cols) if c.key] or [0]
    for row in cells:
        out.print(Text("  ").join(row[i] for i in keys), style="bold", soft_wrap=True)
        grid = Table.grid(Column(no_wrap=True, style="dim"), Column(overflow="fold"),
                          padding=(0, 1))
        for i, col in enumerate(cols):
            if i not in keys:
                grid.add_row(col.header, row[i])
        out.print(Padding(grid, (0, 0, 0, 2), expand=False))
