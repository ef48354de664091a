"""Contact lists from CSV and XLSX files, and the do-not-call list.

The import checks the whole file before storing anything: a file that is not a spreadsheet,
or that has no phone column, is refused with a clear error and nothing is imported. Then
each row is checked on its own: good rows are imported (duplicates merged: a row sharing a
number with a contact already in the list adds to that contact), every bad row is written to
a rejects file with its line and reason.

Phone numbers are normalised to E.164 with ``phonenumbers`` (``default_region`` for numbers
without a country code). A number with letters or any character other than digits, spaces,
``+ - ( ) . /`` is rejected: nothing a file says reaches the dialplan but E.164 digits. A
name that looks like a spreadsheet formula (``=``, ``+``, ``-``, ``@`` first) is rejected:
it would run when an agent opens an export.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy import select
from sqlmodel import col

from core.models import Contact, ContactList, ContactPhone, DncEntry
from core.storage import Store

PHONE_HEADERS = re.compile(r"^(phone|tel|telephone|mobile|cell|number|numero|num)[ _-]?\d*$", re.I)
NAME_HEADERS = re.compile(r"^(name|full[ _]?name|nom|contact)$", re.I)
FIRST_HEADERS = re.compile(r"^(first[ _]?name|prenom|given[ _]?name)$", re.I)
LAST_HEADERS = re.compile(r"^(last[ _]?name|surname|family[ _]?name)$", re.I)
TZ_HEADERS = re.compile(r"^(tz|timezone|time[ _]?zone)$", re.I)
TAG_HEADERS = re.compile(r"^(tags?|labels?)$", re.I)
NUMBER_CHARS = re.compile(r"^[0-9 +\-().\/]+$")
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


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]], int]:
    """(header, rows as (line number, column -> text), row count) of a CSV or XLSX file."""
    try:
        head = path.read_bytes()[:8]
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        return _xlsx(path)
    return _csv(path)


def _xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]], int]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{path}: not a readable XLSX spreadsheet ({exc})") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    try:
        header = [_cell(v).strip() for v in next(rows)]
    except StopIteration:
        raise ImportFileError(f"{path}: the spreadsheet is empty") from None
    count = max(0, (sheet.max_row or 1) - 1)

    def gen() -> Iterator[tuple[int, dict[str, str]]]:
        for n, values in enumerate(rows, start=2):
            cells = [_cell(v) for v in values]
            if any(c.strip() for c in cells):
                yield n, dict(zip(header, cells, strict=False))
        book.close()

    return header, gen(), count


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a number typed into a cell: 33142685300.0
    return str(v)


def _csv(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]], int]:
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise ImportFileError(f"{path}: not a CSV or XLSX file (binary content)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    sample = text[:65536]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        raise ImportFileError(f"{path}: empty, or not a CSV file") from None
    count = max(0, text.count("\n") - 1)

    def gen() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for values in reader:
                if any(v.strip() for v in values):
                    yield reader.line_num, dict(zip(header, values, strict=False))
        except csv.Error as exc:
            raise ImportFileError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None

    return header, gen(), count


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
    """E.164, or ValueError with the reason.

    >>> normalise("01 42 68 53 00", "FR")
    '+33142685300'
    >>> normalise("555-0100;Hangup", "US")
    Traceback (most recent call last):
    ...
    ValueError: number '555-0100;Hangup' has characters other than digits and + - ( ) . /
    """
    text = raw.strip()
    if not NUMBER_CHARS.fullmatch(text):
        raise ValueError(f"number {raw!r} has characters other than digits and + - ( ) . /")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"number {raw!r}: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"number {raw!r} is not a valid number (region {region})")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def zone_of(e164: str) -> str:
    """The number's time zone when the number says it (one zone), else ''."""
    zones = pn_timezone.time_zones_for_number(phonenumbers.parse(e164))
    zones = tuple(z for z in zones if z != "Etc/Unknown")
    return zones[0] if len(zones) == 1 else ""


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
    for column in m.phones:
        raw = values.get(column, "").strip()
        if raw:
            e164 = normalise(raw, region)
            if e164 not in numbers:
                numbers.append(e164)
    if not numbers:
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
        zone = zone_of(numbers[0])
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
) -> Report:
    """Import ``path`` into the list ``list_name`` (created if new). See the module docstring."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}", list_name):
        raise ImportFileError(f"--list: {list_name!r} is not a name (letters, digits, _ . -)")
    header, rows, total = read_rows(path)
    m = detect(header, mapping, path=path)
    report = Report(list_name=list_name)
    bad: list[tuple[int, str, dict[str, str]]] = []
    good: list[Row] = []
    done = 0
    for line, values in rows:
        done += 1
        try:
            good.append(check_row(line, values, m, region))
        except ValueError as exc:
            bad.append((line, str(exc), values))
        if progress is not None and done % 200 == 0:
            progress(done, total)
    if progress is not None:
        progress(done, max(total, done))
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
        known: dict[str, int] = {
            number: contact_id
            for number, contact_id in (
                await s.execute(
                    select(col(ContactPhone.number), col(ContactPhone.contact_id)).where(
                        col(ContactPhone.list_id) == lst.id
                    )
                )
            ).all()
        }
        phones_of: dict[int, int] = {}
        for contact_id in known.values():
            phones_of[contact_id] = phones_of.get(contact_id, 0) + 1
        for row in good:
            existing = next((known[n] for n in row.numbers if n in known), None)
            if existing is not None:
                contact = await s.get(Contact, existing)
                assert contact is not None
                contact.tags = json.dumps(sorted({*json.loads(contact.tags), *row.tags}))
                contact.fields = json.dumps({**json.loads(contact.fields), **row.fields})
                contact.name = contact.name or row.name
                report.merged += 1
            else:
                contact = Contact(
                    list_id=lst.id, name=row.name, timezone=row.timezone,
                    tags=json.dumps(sorted(set(row.tags))), fields=json.dumps(row.fields),
                )  # fmt: skip
                s.add(contact)
                await s.flush()
                report.imported += 1
            assert contact.id is not None
            for number in row.numbers:
                if number in known:
                    continue
                position = phones_of.get(contact.id, 0)
                s.add(ContactPhone(contact_id=contact.id, list_id=lst.id, number=number,
                                   position=position))  # fmt: skip
                phones_of[contact.id] = position + 1
                known[number] = contact.id
        uow.emit(
            "dialer", "contacts_imported",
            {"list": list_name, "imported": report.imported, "merged": report.merged,
             "rejected": len(bad), "file": path.name},
        )  # fmt: skip
    report.rejected = len(bad)
    if bad:
        report.rejects_file = rejects or path.with_name(path.name + ".rejects.csv")
        with report.rejects_file.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["line", "reason", *header])
            for line, reason, values in bad:
                w.writerow([line, reason, *(_safe(values.get(h, "")) for h in header)])
    return report


def _safe(value: str) -> str:
    """A cell for a CSV a person will open: formulas are written as text."""
    return "'" + value if FORMULA.match(value) else value


# -- do not call ---------------------------------------------------------------------------
async def dnc_add(
    store: Store, numbers: list[str], region: str, source: str
) -> tuple[int, list[str]]:
    """Add numbers (normalised); returns (added, errors). Already listed ones are kept."""
    errors: list[str] = []
    added = 0
    async with store.unit_of_work() as uow:
        for raw in numbers:
            try:
                e164 = normalise(raw, region)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            known = (
                await uow.session.execute(select(DncEntry).where(col(DncEntry.number) == e164))
            ).scalar_one_or_none()
            if known is None:
                uow.session.add(DncEntry(number=e164, source=source[:200]))
                await uow.session.flush()
                added += 1
        uow.emit("dialer", "dnc_added", {"added": added, "source": source[:200]})
    return added, errors


async def dnc_check(store: Store, number: str, region: str) -> DncEntry | None:
    e164 = normalise(number, region)
    async with store.sessions() as s:
        return (
            await s.execute(select(DncEntry).where(col(DncEntry.number) == e164))
        ).scalar_one_or_none()
