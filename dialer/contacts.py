"""Contact lists from CSV and XLSX files, and the do-not-call list.

The import checks the file before storing anything: a file that is not a spreadsheet, that
has no phone column, or an XLSX that would expand past :data:`XLSX_MAX_EXPANDED` (a zip bomb)
is refused with a clear error and nothing is imported. Then each row is checked on its own:
good rows are imported (duplicates merged: a row sharing a number with a contact already in
the list adds to that contact), every bad row is written to a rejects file with its line and
reason.

The file is streamed (memory stays flat whatever its size) and stored in batches of
:data:`BATCH` rows, each its own short transaction with bulk inserts and one query for the
numbers already in the list: a large import never holds the database's write lock for more
than a few tens of milliseconds, so the calls ``serve`` is handling meanwhile are not held up.
An import cut off half-way keeps the batches it stored; running it again merges the rest.

Phone numbers are normalised to E.164 with ``phonenumbers`` (``default_region`` for numbers
without a country code). A number with letters or any character other than digits, spaces,
``+ - ( ) . /`` is rejected: nothing a file says reaches the dialplan but E.164 digits. A
name that looks like a spreadsheet formula (``=``, ``+``, ``-``, ``@`` first) is rejected:
it would run when an agent opens an export.
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy import delete, func, insert, select
from sqlmodel import col

from telephonist.core.files import ExportError, open_export
from telephonist.core.models import Campaign, Contact, ContactList, ContactPhone, DncEntry, utcnow
from telephonist.core.numbers import NUMBER_CHARS, Numbering
from telephonist.core.storage import Store
from telephonist.dialer.events import DIALER

PHONE_HEADERS = re.compile(r"^(phone|tel|telephone|mobile|cell|number|numero|num)[ _-]?\d*$", re.I)
NAME_HEADERS = re.compile(r"^(name|full[ _]?name|nom|contact)$", re.I)
FIRST_HEADERS = re.compile(r"^(first[ _]?name|prenom|given[ _]?name)$", re.I)
LAST_HEADERS = re.compile(r"^(last[ _]?name|surname|family[ _]?name)$", re.I)
TZ_HEADERS = re.compile(r"^(tz|timezone|time[ _]?zone)$", re.I)
TAG_HEADERS = re.compile(r"^(tags?|labels?)$", re.I)
FORMULA = re.compile(r"^[=+\-@\t\r]")


class ImportFileError(ValueError):
    """The whole file is refused (nothing imported): the message names the file."""


@dataclass
class Mapping:
    """Which columns hold what. Detected from the header row, or given with ``--map``."""

    phones: list[str]
    name: list[str] = field(default_factory=list)
    timezone: str | None = None
    tags: str | None = None


@dataclass
class Report:
    imported: int = 0
    merged: int = 0
    rejected: int = 0
    rejects_file: Path | None = None
    list_name: str = ""
    batches: int = 0
    longest_batch: float = 0.0
    """Seconds of the longest batch transaction (how long the write lock was held at most)."""
    batch_seconds: list[float] = field(default_factory=list)


Rows = tuple[list[str], Iterator[tuple[int, dict[str, str]]], int, Callable[[], None]]


@contextmanager
def read_rows(path: Path) -> Iterator[tuple[list[str], Iterator[tuple[int, dict[str, str]]], int]]:
    """(header, rows as (line number, column -> text), row count) of a CSV or XLSX file.
    The rows are read as they are iterated (the file is never held in memory whole); the file
    is closed when the ``with`` block ends."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror})") from None
    header, rows, count, close = _xlsx(path) if head.startswith(b"PK\x03\x04") else _csv(path)
    try:
        yield header, rows, count
    finally:
        close()


BATCH = 500
"""Rows stored per transaction (``telephonist contacts bench``: ~30 ms of write lock on
SQLite on an idle 2-core machine, so a call's write waits at most that long)."""
XLSX_MAX_EXPANDED = 1024 * 1024 * 1024
"""An XLSX whose parts expand past this (or 200 times their compressed size) is refused."""


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"{path}: not a readable XLSX spreadsheet ({exc})") from None
    total = sum(p.file_size for p in parts)
    if total > XLSX_MAX_EXPANDED:
        raise ImportFileError(
            f"{path}: expands to {total // 2**20} MB (limit {XLSX_MAX_EXPANDED // 2**20} MB);"
            " split it, or save it as CSV"
        )
    for p in parts:
        if p.file_size > 1_000_000 and p.file_size > 200 * max(p.compress_size, 1):
            raise ImportFileError(
                f"{path}: part {p.filename} expands {p.file_size // max(p.compress_size, 1)}"
                " times (a zip bomb?); refused"
            )


def _xlsx(path: Path) -> Rows:
    import openpyxl

    _check_zip(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{path}: not a readable XLSX spreadsheet ({exc})") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    try:
        header = [_cell(v).strip() for v in next(rows)]
    except StopIteration:
        book.close()
        raise ImportFileError(f"{path}: the spreadsheet is empty") from None
    count = max(0, (sheet.max_row or 1) - 1)

    def gen() -> Iterator[tuple[int, dict[str, str]]]:
        for n, values in enumerate(rows, start=2):
            cells = [_cell(v) for v in values]
            if any(c.strip() for c in cells):
                yield n, dict(zip(header, cells, strict=False))

    return header, gen(), count, book.close


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a number typed into a cell: 33142685300.0
    return str(v)


def _encoding(path: Path) -> tuple[str, int]:
    """The file's text encoding (UTF-8, else Windows-1252 as Excel writes it) judged on its
    first megabyte, and its number of lines, read in chunks (memory stays flat)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    encoding, lines = "utf-8-sig", 0
    with path.open("rb") as fh:
        first = True
        while chunk := fh.read(1 << 20):
            if first:
                if b"\x00" in chunk[:65536]:
                    raise ImportFileError(f"{path}: not a CSV or XLSX file (binary content)")
                try:
                    decoder.decode(chunk, final=False)
                except UnicodeDecodeError:
                    encoding = "cp1252"
                first = False
            lines += chunk.count(b"\n")
    return encoding, lines


def _csv(path: Path) -> Rows:
    encoding, lines = _encoding(path)
    fh = path.open(encoding=encoding, errors="replace", newline="")
    sample = fh.read(65536)
    fh.seek(0)
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(fh, dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        fh.close()
        raise ImportFileError(f"{path}: empty, or not a CSV file") from None
    count = max(0, lines - 1)

    def gen() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for values in reader:
                if any(v.strip() for v in values):
                    yield reader.line_num, dict(zip(header, values, strict=False))
        except csv.Error as exc:
            raise ImportFileError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None

    return header, gen(), count, fh.close


def detect(header: list[str], given: dict[str, str] | None = None, *, path: Path) -> Mapping:
    """The column mapping from ``--map`` (``phone=Tel,name=Nom``) or the header names."""
    if given:
        unknown = [c for c in given.values() for c in c.split("+") if c not in header]
        if unknown:
            raise ImportFileError(
                f"{path}: --map names columns not in the file: {', '.join(unknown)} "
                f"(columns: {', '.join(header)})"
            )
        phones = given.get("phone", "").split("+") if given.get("phone") else []
        mapping = Mapping(
            phones=phones,
            name=given["name"].split("+") if given.get("name") else [],
            timezone=given.get("timezone"),
            tags=given.get("tags"),
        )
    else:
        names = [h for h in header if NAME_HEADERS.match(h)]
        if not names:
            names = [h for h in header if FIRST_HEADERS.match(h)] + [
                h for h in header if LAST_HEADERS.match(h)
            ]
        mapping = Mapping(
            phones=[h for h in header if PHONE_HEADERS.match(h)],
            name=names,
            timezone=next((h for h in header if TZ_HEADERS.match(h)), None),
            tags=next((h for h in header if TAG_HEADERS.match(h)), None),
        )
    if not mapping.phones:
        raise ImportFileError(
            f"{path}: no phone column (columns: {', '.join(header) or 'none'}); name one "
            f"'phone', 'mobile', 'tel'..., or map it with --map phone=COLUMN"
        )
    return mapping


def normalise(raw: str, region: str) -> str:
    """E.164, or ValueError with the reason (:meth:`core.numbers.Numbering.e164`).

    >>> normalise("01 42 68 53 00", "FR")
    '+33142685300'
    >>> normalise("555-0100;Hangup", "US")
    Traceback (most recent call last):
    ...
    telephonist.core.numbers.NumberError: number: '555-0100;Hangup' has characters other than ...
    """
    return _checked(raw, region)[0]


def _checked(raw: str, region: str) -> tuple[str, phonenumbers.PhoneNumber, int]:
    """(E.164, the parsed number, its type), with the centre's one normaliser."""
    return numbering(region).e164(raw)


@functools.lru_cache(maxsize=16)
def numbering(region: str) -> Numbering:
    return Numbering(region)


def _zone_of_checked(parsed: phonenumbers.PhoneNumber, kind: int) -> str:
    """The number's time zone when the number says it (one zone), else ''."""
    if phonenumbers.is_number_type_geographical(kind, parsed.country_code or 0):
        return _zone(pn_timezone.time_zones_for_geographical_number(parsed))
    return _zone(pn_timezone.time_zones_for_number(parsed))


def _zone(zones: tuple[str, ...] | list[str]) -> str:
    known = tuple(z for z in zones if z != "Etc/Unknown")
    return known[0] if len(known) == 1 else ""


@dataclass
class Row:
    line: int
    numbers: list[str]
    name: str
    timezone: str
    tags: list[str]
    fields: dict[str, str]


def check_row(line: int, values: dict[str, str], m: Mapping, region: str) -> Row:
    """One row, checked (ValueError with the reason)."""
    numbers: list[str] = []
    first: tuple[phonenumbers.PhoneNumber, int] | None = None
    for column in m.phones:
        raw = values.get(column, "").strip()
        if raw:
            e164, parsed, kind = _checked(raw, region)
            if e164 not in numbers:
                numbers.append(e164)
                first = first or (parsed, kind)
    if not numbers or first is None:
        raise ValueError("no phone number")
    name = " ".join(values.get(c, "").strip() for c in m.name).strip()
    if FORMULA.match(name):
        raise ValueError(f"name {name[:40]!r} looks like a spreadsheet formula")
    if len(name) > 120 or not name.isprintable():
        raise ValueError("name: at most 120 printable characters")
    zone = values.get(m.timezone, "").strip() if m.timezone else ""
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time zone {zone!r} is unknown") from None
    else:
        zone = _zone_of_checked(*first)
    tags = (
        [t.strip() for t in re.split(r"[,;]", values.get(m.tags, "")) if t.strip()]
        if m.tags
        else []
    )
    used = {*m.phones, *m.name, m.timezone, m.tags}
    fields = {k: v for k, v in values.items() if k and k not in used and v != ""}
    for k, v in fields.items():
        if FORMULA.match(v) and not NUMBER_CHARS.fullmatch(v):
            raise ValueError(f"column {k!r}: {v[:40]!r} looks like a spreadsheet formula")
    return Row(line, numbers, name, zone, tags, fields)


async def import_file(
    store: Store,
    path: Path,
    list_name: str,
    *,
    region: str,
    mapping: dict[str, str] | None = None,
    rejects: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH,
) -> Report:
    """Import ``path`` into the list ``list_name`` (created if new). See the module docstring.

    ``progress(rows done, rows in the file)`` is called after each stored batch."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}", list_name):
        raise ImportFileError(f"--list: {list_name!r} is not a name (letters, digits, _ . -)")
    with read_rows(path) as (header, rows, total):
        m = detect(header, mapping, path=path)
        report = Report(list_name=list_name)
        bad = _Rejects(rejects or path.with_name(path.name + ".rejects.csv"), header)
        list_id = await _list_id(store, list_name)
        good: list[Row] = []
        done = 0
        try:
            for line, values in rows:
                done += 1
                try:
                    good.append(check_row(line, values, m, region))
                except ValueError as exc:
                    bad.add(line, str(exc), values)
                if len(good) >= batch:
                    await _store_batch(store, list_id, good, report)
                    good.clear()
                    if progress is not None:
                        progress(done, max(total, done))
            if good:
                await _store_batch(store, list_id, good, report)
        finally:
            bad.close()
    if progress is not None:
        progress(done, max(total, done))
    report.rejected = bad.count
    report.rejects_file = bad.path if bad.count else None
    async with store.unit_of_work() as uow:
        DIALER(uow, "contacts_imported",
            {"list": list_name, "imported": report.imported, "merged": report.merged,
             "rejected": report.rejected, "file": path.name},
        )  # fmt: skip
    return report


async def _list_id(store: Store, list_name: str) -> int:
    async with store.unit_of_work() as uow:
        s = uow.session
        lst = (
            await s.execute(select(ContactList).where(col(ContactList.name) == list_name))
        ).scalar_one_or_none()
        if lst is None:
            lst = ContactList(name=list_name)
            s.add(lst)
            await s.flush()
        assert lst.id is not None
        return lst.id


async def _store_batch(store: Store, list_id: int, rows: list[Row], report: Report) -> None:
    """One short transaction: the batch's numbers already in the list are found with one
    query; new contacts and their numbers are bulk-inserted; rows that share a number with an
    existing contact (or an earlier row) are merged into it."""
    now = utcnow()
    started = time.perf_counter()
    async with store.unit_of_work() as uow:
        s = uow.session
        numbers = list({n for r in rows for n in r.numbers})
        known: dict[str, int] = {}
        for i in range(0, len(numbers), 500):  # bound the IN list
            found = await s.execute(
                select(col(ContactPhone.number), col(ContactPhone.contact_id))
                .where(col(ContactPhone.list_id) == list_id)
                .where(col(ContactPhone.number).in_(numbers[i : i + 500]))
            )
            known.update((number, contact_id) for number, contact_id in found.all())
        new: list[Row] = []
        pending: dict[str, int] = {}  # number -> index in new
        merges: dict[int, list[Row]] = {}
        for row in rows:
            existing = next((known[n] for n in row.numbers if n in known), None)
            if existing is not None:
                merges.setdefault(existing, []).append(row)
                report.merged += 1
                continue
            earlier = next((pending[n] for n in row.numbers if n in pending), None)
            if earlier is not None:
                _merge_row(new[earlier], row)
                for n in row.numbers:
                    pending.setdefault(n, earlier)
                report.merged += 1
                continue
            for n in row.numbers:
                pending[n] = len(new)
            new.append(Row(row.line, list(row.numbers), row.name, row.timezone,
                           list(row.tags), dict(row.fields)))  # fmt: skip
        phones: list[dict[str, Any]] = []
        if new:
            values = [
                {"list_id": list_id, "name": r.name, "timezone": r.timezone,
                 "tags": json.dumps(sorted(set(r.tags))), "fields": json.dumps(r.fields),
                 "created_at": now}
                for r in new
            ]  # fmt: skip
            # RETURNING's row order is not guaranteed (SQLite says so): each id is matched to
            # its row by the values it was inserted with. Rows with the same values are
            # interchangeable, so any of their ids fits any of them.
            table: Any = Contact.__table__  # type: ignore[attr-defined]
            keys = ("name", "timezone", "tags", "fields")
            conn = await s.connection()
            result = await conn.execute(
                insert(table).returning(table.c.id, *(table.c[k] for k in keys)), values
            )
            ids_by_key: dict[tuple[Any, ...], list[int]] = {}
            for contact_id, *key in result.all():
                ids_by_key.setdefault(tuple(key), []).append(contact_id)
            ids = [ids_by_key[tuple(v[k] for k in keys)].pop() for v in values]
            report.imported += len(new)
            for index, (contact_id, r) in enumerate(zip(ids, new, strict=True)):
                mine = [n for n in r.numbers if pending.get(n) == index]
                phones += [
                    {"contact_id": contact_id, "list_id": list_id, "number": n, "position": i}
                    for i, n in enumerate(mine)
                ]
        if merges:
            contacts = (
                await s.execute(select(Contact).where(col(Contact.id).in_(list(merges))))
            ).scalars()
            counted = await s.execute(
                select(col(ContactPhone.contact_id), func.count())
                .where(col(ContactPhone.contact_id).in_(list(merges)))
                .group_by(col(ContactPhone.contact_id))
            )
            counts = {contact_id: int(n) for contact_id, n in counted.all()}
            claimed = set(known) | set(pending)
            for contact in contacts:
                assert contact.id is not None
                position = counts.get(contact.id, 0)
                for row in merges[contact.id]:
                    contact.tags = json.dumps(sorted({*json.loads(contact.tags), *row.tags}))
                    contact.fields = json.dumps({**json.loads(contact.fields), **row.fields})
                    contact.name = contact.name or row.name
                    for n in row.numbers:
                        if n not in claimed:
                            phones.append({"contact_id": contact.id, "list_id": list_id,
                                           "number": n, "position": position})  # fmt: skip
                            position += 1
                            claimed.add(n)
        if phones:
            await s.execute(insert(ContactPhone), phones)
    took = time.perf_counter() - started
    report.batches += 1
    report.longest_batch = max(report.longest_batch, took)
    report.batch_seconds.append(took)


def _merge_row(into: Row, row: Row) -> None:
    into.tags = sorted({*into.tags, *row.tags})
    into.fields = {**into.fields, **row.fields}
    into.name = into.name or row.name
    into.numbers += [n for n in row.numbers if n not in into.numbers]


class _Rejects:
    """The rejects file, written as bad rows come (opened at the first one, never through a
    symbolic link)."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path, self.header = path, header
        self.count = 0
        self._fh: Any = None
        self._writer: Any = None

    def add(self, line: int, reason: str, values: dict[str, str]) -> None:
        if self._fh is None:
            try:
                self._fh = open_export(self.path, newline="")
            except ExportError as exc:
                raise ImportFileError(f"the rejects file: {exc}") from None
            self._writer = csv.writer(self._fh)
            self._writer.writerow(["line", "reason", *self.header])
        self._writer.writerow([line, reason, *(_safe(values.get(h, "")) for h in self.header)])
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _safe(value: str) -> str:
    """A cell for a CSV a person will open: formulas are written as text."""
    return "'" + value if FORMULA.match(value) else value


# -- do not call ---------------------------------------------------------------------------
async def dnc_add(
    store: Store, numbers: Iterable[str], region: str, source: str, *, batch: int = BATCH
) -> tuple[int, list[str]]:
    """Add numbers (normalised); returns (added, errors). Already listed ones are kept.

    ``numbers`` may be a generator over a large file: they are stored in batches, each a
    short transaction (one query for the numbers already listed, one bulk insert)."""
    errors: list[str] = []
    added = 0
    chunk: list[str] = []

    async def flush() -> int:
        async with store.unit_of_work() as uow:
            listed = set(
                (
                    await uow.session.execute(
                        select(col(DncEntry.number)).where(col(DncEntry.number).in_(chunk))
                    )
                ).scalars()
            )
            new = [n for n in dict.fromkeys(chunk) if n not in listed]
            if new:
                now = utcnow()
                await uow.session.execute(
                    insert(DncEntry),
                    [{"number": n, "source": source[:200], "added_at": now} for n in new],
                )
        chunk.clear()
        return len(new)

    for raw in numbers:
        try:
            chunk.append(normalise(raw, region))
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if len(chunk) >= batch:
            added += await flush()
    if chunk:
        added += await flush()
    async with store.unit_of_work() as uow:
        DIALER(uow, "dnc_added", {"added": added, "source": source[:200]})
    return added, errors


async def dnc_check(store: Store, number: str, region: str) -> DncEntry | None:
    e164 = normalise(number, region)
    async with store.sessions() as s:
        return (
            await s.execute(select(DncEntry).where(col(DncEntry.number) == e164))
        ).scalar_one_or_none()


async def dnc_list(
    store: Store, *, limit: int = 100, offset: int = 0, contains: str = ""
) -> tuple[int, list[dict[str, Any]]]:
    """(how many entries match, a page of them: number, added_at, source), by number."""
    where = col(DncEntry.number).contains(contains) if contains else col(DncEntry.id).is_not(None)
    async with store.sessions() as s:
        total = int((await s.execute(select(func.count()).where(where))).scalar_one())
        rows = await s.execute(
            select(DncEntry).where(where).order_by(col(DncEntry.number)).offset(offset).limit(limit)
        )
        return total, [
            {"number": e.number, "added_at": e.added_at.isoformat(), "source": e.source}
            for e in rows.scalars()
        ]


async def dnc_remove(
    store: Store, numbers: Iterable[str], region: str, by: str
) -> tuple[list[str], list[str], list[str]]:
    """Take numbers off the do-not-call list: (removed, not listed, refused as numbers).
    Announced (``dialer/dnc_removed``) with who removed them: a number taken off may be
    called again, so it is never silent."""
    removed: list[str] = []
    absent: list[str] = []
    bad: list[str] = []
    wanted: list[str] = []
    for raw in numbers:
        try:
            wanted.append(normalise(raw, region))
        except ValueError as exc:
            bad.append(str(exc))
    async with store.unit_of_work() as uow:
        for number in dict.fromkeys(wanted):
            entry = (
                await uow.session.execute(select(DncEntry).where(col(DncEntry.number) == number))
            ).scalar_one_or_none()
            if entry is None:
                absent.append(number)
                continue
            await uow.session.delete(entry)
            removed.append(number)
        if removed:
            DIALER(uow, "dnc_removed", {"numbers": removed, "by": by[:80]})
    return removed, absent, bad


class ListInUse(ValueError):
    """A contact list a campaign still calls from."""


async def show_list(
    store: Store, name: str, *, limit: int = 100, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """(contacts in the list, a page of them with their numbers in calling order)."""
    async with store.sessions() as s:
        lst = (
            await s.execute(select(ContactList).where(col(ContactList.name) == name))
        ).scalar_one_or_none()
        if lst is None:
            raise ImportFileError(f"--list: no contact list {name!r}")
        total = int(
            (
                await s.execute(
                    select(func.count()).select_from(Contact).where(col(Contact.list_id) == lst.id)
                )
            ).scalar_one()
        )
        people = list(
            (
                await s.execute(
                    select(Contact).where(col(Contact.list_id) == lst.id)
                    .order_by(col(Contact.id)).offset(offset).limit(limit)
                )
            ).scalars()
        )  # fmt: skip
        phones: dict[int, list[str]] = {}
        if people:
            for contact_id, number in await s.execute(
                select(col(ContactPhone.contact_id), col(ContactPhone.number))
                .where(col(ContactPhone.contact_id).in_([p.id for p in people]))
                .order_by(col(ContactPhone.contact_id), col(ContactPhone.position))
            ):
                phones.setdefault(contact_id, []).append(number)
    return total, [
        {"id": p.id, "name": p.name, "numbers": phones.get(p.id or 0, []),
         "timezone": p.timezone, "tags": json.loads(p.tags), "fields": json.loads(p.fields)}
        for p in people
    ]  # fmt: skip


async def delete_list(store: Store, name: str, by: str) -> int:
    """Delete a contact list, its contacts and their numbers; returns how many contacts. A
    list a campaign that is not stopped still calls from is refused (:class:`ListInUse`);
    the dial history of stopped campaigns keeps the numbers it dialled."""
    async with store.unit_of_work() as uow:
        s = uow.session
        lst = (
            await s.execute(select(ContactList).where(col(ContactList.name) == name))
        ).scalar_one_or_none()
        if lst is None:
            raise ImportFileError(f"no contact list {name!r}")
        users = list(
            (
                await s.execute(
                    select(col(Campaign.name))
                    .where(col(Campaign.list_name) == name)
                    .where(col(Campaign.state) != "stopped")
                )
            ).scalars()
        )
        if users:
            raise ListInUse(
                f"contact list {name!r} is called by campaign(s) {', '.join(sorted(users))}: "
                "stop them first"
            )
        n = int(
            (
                await s.execute(
                    select(func.count()).select_from(Contact).where(col(Contact.list_id) == lst.id)
                )
            ).scalar_one()
        )
        await s.execute(delete(ContactPhone).where(col(ContactPhone.list_id) == lst.id))
        await s.execute(delete(Contact).where(col(Contact.list_id) == lst.id))
        await s.delete(lst)
        DIALER(uow, "contacts_deleted", {"list": name, "contacts": n, "by": by[:80]})
    return n
