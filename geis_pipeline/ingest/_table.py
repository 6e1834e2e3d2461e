"""Shared text-table helpers for the text readers: numbers with file/line/column context.

numpy's C parser (``np.loadtxt``) reads the numbers; only when it fails does a
slow second pass find the first bad cell, so that the error names the line and
column instead of numpy's row count.

A streamed file (:func:`parse_file_table`: EC-Lab ``.mpt``, written while the
instrument measures) may end in a line the instrument is still writing: when
that last line (which has no line end) has fewer cells than the one before or
its last number is written differently, it is not read at all, since a number
cut short can still parse (``1.5E-002`` cut to ``1.5E-0``) as a wrong value.
The next run reads it whole.
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geis_pipeline._cores import spare_core
from geis_pipeline.errors import IngestError

log = logging.getLogger(__name__)

__all__ = [
    "ColumnSpec",
    "RowDefects",
    "Table",
    "check_no_nul",
    "find_column",
    "nonfinite_rows",
    "parse_file_table",
    "parse_table",
    "read_head",
    "read_text",
    "require_finite",
]

# NUL bytes never occur in instrument text files; finding one means binary
# garbage (a corrupt or mislabelled file). A NUL search runs at memchr speed;
# other stray control bytes are caught by the number parser with line/column.
_NUL = b"\x00"


def read_text(path: Path, encoding: str = "latin-1") -> list[str]:
    """Read a text file as lines without line ends (CRLF or LF).

    Raises
    ------
    IngestError
        The file cannot be opened or holds binary bytes.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", file=path) from exc
    nul = raw.find(_NUL)
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise IngestError("binary bytes in a text file (corrupt?)", file=path, line=line)
    lines = raw.decode(encoding, errors="replace").splitlines()
    if raw and not raw.endswith((b"\n", b"\r")) and _cut_short(lines):
        log.warning(
            "%s, line %d: the last line is cut short (still being written?): left out",
            path,
            len(lines),
        )
        return lines[:-1]
    return lines


_CELLS = re.compile(r"[\t,;]|\s+")


def _cut_short(lines: list[str]) -> bool:
    """Whether a last line without a line end holds fewer cells than the data row before it.

    (A cut inside the last cell keeps the count: the readers of fixed-format numbers
    catch that, variable-width ones cannot.)
    """
    if len(lines) < 2:
        return False
    before = [cell for cell in _CELLS.split(lines[-2].strip()) if cell]
    last = [cell for cell in _CELLS.split(lines[-1].strip()) if cell]
    if len(before) < 2 or len(last) >= len(before):
        return False
    try:
        [float(cell.replace(",", ".")) for cell in before]
    except ValueError:
        return False  # not a data row: the last line is a footer
    return True


_TAIL_BYTES = 1 << 16


def _shape(cell: bytes) -> bytes:
    """A number's written form with digits and signs abstracted (``-1.5E-002`` -> ``d.dEddd``)."""
    return re.sub(rb"[+-]", b"", re.sub(rb"\d", b"d", cell.strip()))


def _complete_size(path: Path, delimiter: str | None) -> int | None:
    """Bytes of ``path`` without a last line cut short, or None to read it all.

    Only a last line without a line end can be cut short. It is left out when
    it has fewer cells than the line before, or its last cell is written
    differently (``1.5E-002`` cut to ``1.5E-0``): the instrument is still
    writing it. A whole last line without a line end (an export) is kept.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, io.SEEK_END)
        tail_start = max(0, size - _TAIL_BYTES)
        handle.seek(tail_start)
        tail = handle.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return None
    lines = tail.splitlines(keepends=True)
    if len(lines) < 2:
        return None
    last, before = lines[-1], lines[-2]
    separator = None if delimiter is None else delimiter.encode()
    last_cells, before_cells = last.split(separator), before.split(separator)
    if len(last_cells) >= len(before_cells) and _shape(last_cells[-1]) == _shape(before_cells[-1]):
        return None
    return size - len(last)


class _Prefix(io.RawIOBase):
    """Bytes ``start:limit`` of a binary file (the first ``limit``), as a readable raw stream."""

    def __init__(self, path: Path, limit: int, start: int = 0) -> None:
        self._file = path.open("rb", buffering=0)
        self._file.seek(start)
        self._left = limit - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        count = self._file.readinto(memoryview(buffer)[: self._left]) or 0
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_lines(path: Path, encoding: str, limit: int | None, start: int = 0) -> io.TextIOBase:
    """The file as text (universal newlines), only its first ``limit`` bytes if given (from
    byte ``start``: a line start)."""
    if limit is None and not start:
        return path.open("r", encoding=encoding, errors="replace", newline=None)
    limit = path.stat().st_size if limit is None else limit
    raw = io.BufferedReader(_Prefix(path, limit, start), buffer_size=1 << 20)
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline=None)


#: A file with at least this many bytes of data rows is parsed in two halves at once, one
#: in a forked process (np.loadtxt holds the GIL): a 30,000-sweep EC-Lab export is ~370 MB.
SPLIT_BYTES = 32 << 20


def _split_point(path: Path, skip: int, limit: int | None) -> tuple[int, int] | None:
    """(a line start near the middle of the data rows, the bytes to parse), or None when the
    file is too small to split or its header's line ends are not plain LF / CRLF."""
    size = path.stat().st_size if limit is None else limit
    if size < SPLIT_BYTES:
        return None
    with path.open("rb") as handle:
        header = b"".join(handle.readline() for _ in range(skip))
        # A lone CR ends a line in text mode but not here: the header's line count would differ.
        if header.count(b"\r") != header.count(b"\r\n") or size - len(header) < SPLIT_BYTES:
            return None
        middle = len(header) + (size - len(header)) // 2
        low = max(len(header), middle - (1 << 20))
        handle.seek(low)
        window = handle.read(middle - low + (1 << 20))
    # The first line start at or after the middle; if that is the end (the middle in the
    # last row: two rows, the second the longer), the last line start before it.
    after = window.find(b"\n", middle - low - 1)
    split = low + after + 1 if after >= 0 else size
    if split >= size:
        before = window.rfind(b"\n", 0, middle - low - 1)
        split = low + before + 1 if before >= 0 else size
    return (split, size) if len(header) < split < size else None


def _fork_context():
    """multiprocessing's fork context when a second process can help: forking is safe (this
    process runs no other thread, e.g. the CLI while reading; a notebook kernel does) and a
    core is spare (:func:`~geis_pipeline._cores.spare_core`); else None."""
    import multiprocessing
    import threading

    if threading.active_count() != 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork") if spare_core() else None


@dataclass(frozen=True)
class Table:
    """Numbers parsed from a text block.

    Attributes
    ----------
    columns
        Column name -> float64 array, one value per data row.
    line_numbers
        1-based file line of each data row; None for binary files, whose
        errors name the 0-based data row instead.
    """

    columns: Mapping[str, np.ndarray]
    line_numbers: np.ndarray | None
    # For streamed files: row -> file line, found by re-reading (errors only).
    line_lookup: Callable[[int], int] | None = None

    def __len__(self) -> int:
        return int(next(iter(self.columns.values())).size) if self.columns else 0

    def error(self, message: str, path: Path, row: int, column: str | None) -> IngestError:
        """An :class:`IngestError` pointing at data row ``row``."""
        if self.line_numbers is not None:
            line = int(self.line_numbers[row])
        elif self.line_lookup is not None:
            line = self.line_lookup(row)
        else:
            return IngestError(f"{message} (data row {row})", file=path, column=column)
        return IngestError(message, file=path, line=line, column=column)


@dataclass(frozen=True)
class ColumnSpec:
    """One column to parse: its index in the row, its key in :attr:`Table.columns`,
    and the file's own column name for error messages (default: the key)."""

    index: int
    name: str
    label: str | None = None


def parse_table(
    lines: Sequence[str],
    first_line_number: int,
    columns: Sequence[ColumnSpec],
    path: Path,
    *,
    delimiter: str | None = "\t",
    decimal_comma: bool = False,
) -> Table:
    """Parse rows of delimited numbers.

    Parameters
    ----------
    lines
        The data rows (no header), as text.
    first_line_number
        1-based file line of ``lines[0]``.
    columns
        Which columns to keep and their names.
    path
        The file, for error messages.
    delimiter
        Cell separator; None splits on runs of white space.
    decimal_comma
        Cells use ``,`` as the decimal mark (German-locale EC-Lab exports).

    Raises
    ------
    IngestError
        A row is short (truncated file) or a cell is not a number; the error
        names the line and column.
    """
    line_numbers = np.arange(first_line_number, first_line_number + len(lines))
    # Blank lines carry nothing (trailing newlines at the end of a file).
    keep = [index for index, line in enumerate(lines) if line.strip()]
    if len(keep) != len(lines):
        lines = [lines[index] for index in keep]
        line_numbers = line_numbers[keep]
    if not lines:
        return Table({spec.name: np.empty(0) for spec in columns}, line_numbers)
    rows: Iterable[str] = lines
    if decimal_comma:
        rows = (line.replace(",", ".") for line in lines)
    usecols = [spec.index for spec in columns]
    try:
        values = _loadtxt(rows, 0, delimiter=delimiter, usecols=usecols, encoding=None)
    except (ValueError, IndexError) as exc:
        _raise_bad_cell(lines, line_numbers, columns, path, delimiter, decimal_comma)
        raise IngestError(f"cannot parse numbers: {exc}", file=path) from exc
    return Table(
        {spec.name: values[:, position] for position, spec in enumerate(columns)},
        line_numbers,
    )


def _raise_bad_cell(
    lines: Sequence[str],
    line_numbers: np.ndarray,
    columns: Sequence[ColumnSpec],
    path: Path,
    delimiter: str | None,
    decimal_comma: bool,
) -> None:
    """Find the first short row or non-numeric cell and raise an error naming it."""
    for line, number in zip(lines, line_numbers, strict=True):
        cells = line.split(delimiter)
        for spec in columns:
            if spec.index >= len(cells):
                raise IngestError(
                    f"row has {len(cells)} cells, expected at least {spec.index + 1} "
                    "(truncated file?)",
                    file=path,
                    line=int(number),
                    column=spec.label or spec.name,
                )
            cell = cells[spec.index].strip()
            if decimal_comma:
                cell = cell.replace(",", ".")
            try:
                float(cell)
            except ValueError:
                raise IngestError(
                    f"not a number: {cell[:40]!r}",
                    file=path,
                    line=int(number),
                    column=spec.label or spec.name,
                ) from None


def require_finite(
    table: Table,
    names: Iterable[str],
    path: Path,
    rows: np.ndarray | None = None,
    column_names: Mapping[str, str] | None = None,
) -> None:
    """Raise if any of the named columns holds NaN or inf (in ``rows`` if given).

    Raises
    ------
    IngestError
        Naming the line and column of the first non-finite value.
    """
    for name in names:
        values = table.columns[name] if rows is None else table.columns[name][rows]
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0]) if rows is None else int(rows[bad[0]])
            raise _nonfinite_error(table, name, row, path, column_names)


def _nonfinite_error(
    table: Table, name: str, row: int, path: Path, column_names: Mapping[str, str] | None
) -> IngestError:
    """The error naming data row ``row``'s non-finite value in column ``name``."""
    label = (column_names or {}).get(name, name)
    return table.error(f"non-finite value {float(table.columns[name][row])!r}", path, row, label)


@dataclass(frozen=True)
class RowDefects:
    """Rows holding a non-finite value, and how to name each for the user.

    A non-finite impedance spoils one sweep, not the file: the reader passes
    these on so the sweep is flagged and skipped with its line, and the rest
    of the file is analysed.

    Attributes
    ----------
    positions
        Sorted positions (into the row selection the reader passes on) of the
        rows with a non-finite value.
    describe
        Position -> message naming the file, line and column.
    """

    positions: np.ndarray
    describe: Callable[[int], str]


def nonfinite_rows(
    table: Table,
    names: Iterable[str],
    path: Path,
    rows: np.ndarray | None = None,
    column_names: Mapping[str, str] | None = None,
) -> RowDefects | None:
    """The rows (of ``rows`` if given) where a named column is NaN or inf; None if none."""
    names = list(names)
    bad = np.zeros(len(table) if rows is None else rows.size, dtype=bool)
    for name in names:
        values = table.columns[name] if rows is None else table.columns[name][rows]
        bad |= ~np.isfinite(values)
    if not bad.any():
        return None

    def describe(position: int) -> str:
        row = position if rows is None else int(rows[position])
        for name in names:
            if not np.isfinite(table.columns[name][row]):
                return str(_nonfinite_error(table, name, row, path, column_names))
        return f"non-finite value in data row {row}"  # pragma: no cover - bad is exact

    return RowDefects(np.flatnonzero(bad), describe)


def find_column(header: Sequence[str], candidates: Iterable[str]) -> int | None:
    """Index of the first header cell equal (case-insensitive, trimmed) to a candidate."""
    normalised = [cell.strip().lower() for cell in header]
    for candidate in candidates:
        try:
            return normalised.index(candidate.lower())
        except ValueError:
            continue
    return None


_CHUNK_BYTES = 1 << 24


def check_no_nul(path: Path) -> None:
    """Raise if the file holds a NUL byte (binary garbage), reading it in chunks.

    Raises
    ------
    IngestError
        Naming the line of the first NUL byte.
    """
    lines_before = 0
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK_BYTES), b""):
                nul = block.find(_NUL)
                if nul >= 0:
                    line = lines_before + block.count(b"\n", 0, nul) + 1
                    raise IngestError(
                        "binary bytes in a text file (corrupt?)", file=path, line=line
                    )
                lines_before += block.count(b"\n")
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", file=path) from exc


def read_head(path: Path, count: int, encoding: str = "latin-1") -> list[str]:
    """The first ``count`` lines of a text file, without line ends."""
    try:
        with path.open("r", encoding=encoding, errors="replace", newline=None) as handle:
            return [line.rstrip("\n") for line in itertools.islice(handle, count)]
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", file=path) from exc


def _data_lines(
    path: Path, skip: int, encoding: str, limit: int | None = None
) -> Iterator[tuple[int, str]]:
    """(file line number, line) of the non-blank lines after the first ``skip``."""
    with _open_lines(path, encoding, limit) as handle:
        for number, line in enumerate(handle, start=1):
            if number > skip and line.strip():
                yield number, line


def _loadtxt(
    source: Iterable[str],
    skiprows: int,
    *,
    delimiter: str | None,
    usecols: list[int],
    encoding: str | None,
) -> np.ndarray:
    """(rows, len(usecols)) float64 of delimited text rows, by numpy's C parser."""
    # A header with no data rows is an empty table here (the callers say what is
    # missing), not numpy's "input contained no data" warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
        return np.loadtxt(
            source,
            delimiter=delimiter,
            usecols=usecols,
            ndmin=2,
            dtype=np.float64,
            comments=None,
            skiprows=skiprows,
            encoding=encoding,
        )


def _load_halves(
    path: Path,
    encoding: str,
    limit: int | None,
    skip: int,
    load: functools.partial,
) -> np.ndarray | None:
    """The rows of a large file parsed in two halves at once: the second in a forked process.

    Each half is :func:`np.loadtxt` of its own lines, so the rows are those of one
    ``load`` of the whole file. None: not split (small file, or forking is not safe, or
    the process failed); ValueError / IndexError: a half did not parse (the caller's
    slower paths then parse or name the bad line).
    """
    split = _split_point(path, skip, limit)
    context = _fork_context() if split is not None else None
    if context is None:
        return None
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    start, stop = split
    try:
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            second = pool.submit(_load_range, path, encoding, start, stop, load)
            with _open_lines(path, encoding, start) as handle:
                first = load(handle, skip)
            rest = second.result()
    except (BrokenProcessPool, OSError, MemoryError):
        return None  # the process could not run: one load of the whole file instead
    width = len(load.keywords["usecols"])
    return np.concatenate([half.reshape(-1, width) for half in (first, rest)])


def _load_range(
    path: Path, encoding: str, start: int, stop: int, load: functools.partial
) -> np.ndarray:
    """``load`` of bytes ``start:stop`` of the file (a forked process runs it)."""
    with _open_lines(path, encoding, stop, start) as handle:
        return load(handle, 0)


def parse_file_table(
    path: Path,
    first_line_number: int,
    columns: Sequence[ColumnSpec],
    *,
    delimiter: str | None = "\t",
    decimal_comma: bool = False,
    encoding: str = "latin-1",
) -> Table:
    """Like :func:`parse_table`, streaming the rows from the file from ``first_line_number``.

    Memory stays at the size of the parsed columns, not the text: a
    30,000-sweep EC-Lab export is hundreds of MB of text.
    """
    skip = first_line_number - 1
    try:
        limit = _complete_size(path, delimiter)  # a last line still being written is left out
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", file=path) from exc

    def rows() -> Iterator[str]:
        # One generator layer (this runs once per data row of a long loop file).
        with _open_lines(path, encoding, limit) as handle:
            for line in itertools.islice(handle, skip, None):
                if line.strip():
                    yield line.replace(",", ".") if decimal_comma else line

    usecols = [spec.index for spec in columns]

    # A module-level function: the forked half of a split parse is sent it.
    load = functools.partial(_loadtxt, delimiter=delimiter, usecols=usecols, encoding=encoding)

    try:
        try:
            if decimal_comma:
                raise ValueError("decimal commas need the line-by-line path")
            # Fast path: numpy reads the file itself (5x faster than a Python iterator).
            values = _load_halves(path, encoding, limit, skip, load)
            if values is None:
                with _open_lines(path, encoding, limit) as handle:
                    values = load(handle, skip)
        except (ValueError, IndexError):
            # Blank lines, decimal commas or a bad cell: the filtered line-by-line path
            # parses or raises again, and the error then names the line.
            values = load(rows(), 0)
    except (ValueError, IndexError) as exc:
        numbered = list(_data_lines(path, skip, encoding, limit))
        _raise_bad_cell(
            [line.rstrip("\n") for _, line in numbered],
            np.array([number for number, _ in numbered]),
            columns,
            path,
            delimiter,
            decimal_comma,
        )
        raise IngestError(f"cannot parse numbers: {exc}", file=path) from exc
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", file=path) from exc

    def line_of(row: int) -> int:
        for index, (number, _) in enumerate(_data_lines(path, skip, encoding, limit)):
            if index == row:
                return number
        return first_line_number + row

    if values.size == 0:
        values = np.empty((0, len(columns)))
    return Table(
        {spec.name: values[:, position] for position, spec in enumerate(columns)},
        None,
        line_of,
    )
