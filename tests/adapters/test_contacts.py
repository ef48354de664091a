"""Contact list import and the do-not-call list, on both databases: good, bad and hostile
files; nothing stored when a file is refused."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from telephonist.core.models import Contact, ContactPhone
from telephonist.core.storage import Store
from telephonist.dialer.contacts import ImportFileError, dnc_add, dnc_check, import_file


async def count(store: Store, model: type) -> int:
    async with store.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


async def test_good_csv_with_several_numbers_tags_fields_and_duplicates(
    store: Store, tmp_path: Path
) -> None:
    f = write_csv(
        tmp_path / "leads.csv",
        [
            ["Name", "Phone", "Mobile", "Tags", "Company", "TZ"],
            ["Jeanne Martin", "01 42 68 53 00", "06 12 34 56 78", "vip;paris", "ACME", ""],
            ["J. Martin", "+33 6 12 34 56 78", "", "renewal", "", ""],  # same person: merged
            ["Bob Smith", "+1 212 555 0199", "", "", "Initech", "America/Chicago"],
        ],
        delimiter=";",
    )
    report = await import_file(store, f, "spring", region="FR")
    assert (report.imported, report.merged, report.rejected) == (2, 1, 0)
    async with store.sessions() as s:
        contacts = {c.name: c for c in (await s.execute(select(Contact))).scalars()}
        phones = (
            (await s.execute(select(ContactPhone).order_by(col(ContactPhone.id)))).scalars().all()
        )
    jeanne = contacts["Jeanne Martin"]
    assert json.loads(jeanne.tags) == ["paris", "renewal", "vip"]
    assert json.loads(jeanne.fields) == {"Company": "ACME"}
    assert jeanne.timezone == "Europe/Paris"  # from the number
    assert contacts["Bob Smith"].timezone == "America/Chicago"  # the override column
    assert [(p.number, p.position) for p in phones if p.contact_id == jeanne.id] == [
        ("+33142685300", 0),
        ("+33612345678", 1),
    ]
    # The same file again: everything merges, nothing is duplicated.
    again = await import_file(store, f, "spring", region="FR")
    assert (again.imported, again.merged) == (0, 3)
    assert await count(store, ContactPhone) == 3


async def test_hostile_rows_are_rejected_with_their_reason_good_rows_imported(
    store: Store, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (
        ["name", "phone", "note"],
        ["Ok Person", "+44 20 7946 0958", "fine"],
        ["Letters", "1-800-FLOWERS", ""],
        ["Dialplan", "555,1)\nSystem(rm -rf /)", ""],
        ['=HYPERLINK("http://evil","x")', "+44 20 7946 0959", ""],
        ["No number", "", ""],
        ["Semicolon", "0207946;Hangup()", ""],
        ["Cell formula", "+44 20 7946 0960", "=1+2"],
        ["Bad zone", "+44 20 7946 0961", ""],
    ):
        sheet.append(row)
    f = tmp_path / "list.xlsx"
    book.save(f)
    report = await import_file(store, f, "uk", region="GB", rejects=tmp_path / "bad.csv")
    assert (report.imported, report.rejected) == (2, 6)
    with (tmp_path / "bad.csv").open() as fh:
        rejected = {int(r["line"]): r["reason"] for r in csv.DictReader(fh)}
    assert set(rejected) == {3, 4, 5, 6, 7, 8}
    assert "characters other than digits" in rejected[3]
    assert "characters other than digits" in rejected[4]
    assert "looks like a spreadsheet formula" in rejected[5]
    assert rejected[6] == "no phone number"
    assert "looks like a spreadsheet formula" in rejected[8]
    text = (tmp_path / "bad.csv").read_text()
    assert "'=HYPERLINK" in text  # written back as text, not as a formula
    async with store.sessions() as s:
        numbers = set((await s.execute(select(col(ContactPhone.number)))).scalars())
    assert numbers == {"+442079460958", "+442079460961"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV or XLSX file"),
        ("fake.xlsx", b"PK\x03\x04garbage-not-a-zip", "not a readable XLSX spreadsheet"),
        ("nophone.csv", b"name,email\nA,a@example.com\n", "no phone column"),
        ("empty.csv", b"", "empty, or not a CSV file"),
    ],
)
async def test_a_file_that_cannot_be_a_contact_list_imports_nothing(
    store: Store, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    good = write_csv(tmp_path / "good.csv", [["phone"], ["+1 212 555 0199"]])
    await import_file(store, good, "keep", region="US")
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(ImportFileError, match=message) as exc:
        await import_file(store, f, "keep", region="US")
    assert str(f) in str(exc.value)
    assert await count(store, Contact) == 1  # what was there is still there, nothing added


async def test_dnc_normalised_and_checked(store: Store) -> None:
    added, bad = await dnc_add(store, ["(212) 555-0199", "+1 212 555 0199", "12;34"], "US", "t")
    assert added == 1 and len(bad) == 1 and "characters other than digits" in bad[0]
    assert await dnc_check(store, "+12125550199", "US") is not None
    assert await dnc_check(store, "212-555-0198", "US") is None


def test_cli_import_reports_and_refuses(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[dialer]\nregion = "FR"\n')
    f = write_csv(tmp_path / "l.csv", [["nom", "tel"], ["A", "0142685300"], ["B", "abc"]])
    base = [sys.executable, "-m", "telephonist.cli.main", "--config", str(config)]
    ok = subprocess.run([*base, "contacts", "import", str(f), "--list", "l1"],
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "1 contacts imported, 0 merged into existing ones, 1 rejected" in ok.stdout
    assert (tmp_path / "l.csv.rejects.csv").exists()
    mapped = [*base, "contacts", "import", str(f), "--list", "l1", "--map", "phone=Nope"]
    bad = subprocess.run(mapped, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--map names columns not in the file: Nope" in bad.stderr
    listed = subprocess.run([*base, "dnc", "check", "01 42 68 53 00"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert listed.returncode == 1 and "not listed" in listed.stdout


async def test_batches_merge_duplicates_across_and_within_them(
    store: Store, tmp_path: Path
) -> None:
    """Stored a few rows at a time (batch=2 here): a number seen in an earlier batch, in the
    same batch, or already in the list still makes one contact."""
    await import_file(
        store, write_csv(tmp_path / "old.csv", [["name", "phone"], ["Old", "0142685301"]]),
        "b", region="FR",
    )  # fmt: skip
    f = write_csv(
        tmp_path / "new.csv",
        [
            ["name", "phone", "mobile", "tags"],
            ["A", "0142685310", "0612345610", "x"],
            ["A again", "0612345610", "", "y"],  # same batch as A: merged into A
            ["B", "0142685320", "", ""],
            ["A later", "0142685310", "0612345611", "z"],  # next batch: into A, adds a number
            ["Old again", "0142685301", "", "w"],  # already in the list
            ["C", "0142685330", "0142685320", ""],  # shares B's number: merged into B
        ],
    )
    report = await import_file(store, f, "b", region="FR", batch=2)
    assert (report.imported, report.merged, report.rejected, report.batches) == (2, 4, 0, 3)
    async with store.sessions() as s:
        contacts = {c.name: c for c in (await s.execute(select(Contact))).scalars()}
        phones = (await s.execute(select(ContactPhone))).scalars().all()
    assert set(contacts) == {"Old", "A", "B"}
    by_contact: dict[int | None, list[tuple[str, int]]] = {}
    for p in phones:
        by_contact.setdefault(p.contact_id, []).append((p.number, p.position))
    assert sorted(by_contact[contacts["A"].id]) == [
        ("+33142685310", 0), ("+33612345610", 1), ("+33612345611", 2),
    ]  # fmt: skip
    assert sorted(by_contact[contacts["B"].id]) == [("+33142685320", 0), ("+33142685330", 1)]
    assert json.loads(contacts["A"].tags) == ["x", "y", "z"]
    assert json.loads(contacts["Old"].tags) == ["w"]
    assert len({p.number for p in phones}) == len(phones)  # no number twice


async def test_rejects_are_never_written_through_a_symbolic_link(
    store: Store, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    f = write_csv(tmp_path / "l.csv", [["phone"], ["abc"]])
    (tmp_path / "l.csv.rejects.csv").symlink_to(victim)
    with pytest.raises(ImportFileError, match="rejects file: .*symbolic link; refused"):
        await import_file(store, f, "s", region="FR")
    assert victim.read_text() == "precious\n"


async def test_an_xlsx_zip_bomb_is_refused_before_it_is_opened(
    store: Store, tmp_path: Path
) -> None:
    import zipfile

    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 50_000_000)  # 50 MB of nothing
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ImportFileError, match="a zip bomb"):
        await import_file(store, bomb, "z", region="FR")
    assert await count(store, Contact) == 0


async def test_a_large_import_never_holds_the_write_lock_long(tmp_path: Path) -> None:
    """While 20,000 rows are imported, another process's small writes (a call's row) wait
    at most a batch, never the whole import (SQLite, the default)."""
    import sqlite3
    import threading
    import time

    from telephonist.bench.contacts_import import write_list

    db = tmp_path / "t.db"
    store = Store(f"sqlite+aiosqlite:///{db}")
    await store.migrate()
    f = tmp_path / "big.csv"
    write_list(f, 20_000)
    waits: list[float] = []
    done_at: list[float] = []  # when each small write committed
    stop = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS probe (t REAL)")
        while not stop.is_set():
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO probe VALUES (?)", (started,))
            conn.execute("COMMIT")
            done_at.append(time.perf_counter())
            waits.append(done_at[-1] - started)
            time.sleep(0.005)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        began = time.perf_counter()
        report = await import_file(store, f, "big", region="FR")
        ended = time.perf_counter()
    finally:
        stop.set()
        thread.join()
        await store.close()
    assert report.imported + report.merged == 19_800 and report.batches >= 40
    # The small writes went on while the import ran (the import holding the lock from its
    # first batch to its last allowed one at most), however fast this machine imports.
    during = [t for t in done_at if began < t < ended]
    assert len(during) >= 10, f"{len(during)} small writes in {ended - began:.2f}s of import"
    assert max(waits) < 1.0, f"a small write waited {max(waits):.2f}s"  # was 54 s


async def test_dnc_list_and_remove(store: Store) -> None:
    from telephonist.core.models import DncEntry, OutboxEvent
    from telephonist.dialer.contacts import dnc_list, dnc_remove

    await dnc_add(store, ["(212) 555-0199", "(212) 555-0198", "(646) 555-0100"], "US", "t")
    total, rows = await dnc_list(store, limit=2)
    assert total == 3 and [r["number"] for r in rows] == ["+12125550198", "+12125550199"]
    assert (await dnc_list(store, contains="646"))[0] == 1
    removed, absent, bad = await dnc_remove(
        store, ["212 555 0199", "+12125550111", "12;34"], "US", by="admin tester"
    )
    assert (removed, absent, len(bad)) == (["+12125550199"], ["+12125550111"], 1)
    assert await dnc_check(store, "+12125550199", "US") is None  # may be called again
    assert await count(store, DncEntry) == 2
    async with store.sessions() as s:
        outbox = (await s.execute(select(OutboxEvent))).scalars()
        events = [json.loads(o.payload)["data"] for o in outbox
                  if o.topic.endswith("/dialer/dnc_removed")]  # fmt: skip
    assert events == [{"numbers": ["+12125550199"], "by": "admin tester"}]


async def test_a_list_is_shown_and_deleted_unless_a_campaign_calls_from_it(
    store: Store, tmp_path: Path
) -> None:
    from telephonist.core.models import Campaign
    from telephonist.dialer.contacts import ListInUse, delete_list, show_list

    f = write_csv(tmp_path / "l.csv", [["name", "phone", "phone2"],
                                       ["Ann", "0142685300", "0612345678"],
                                       ["Bob", "0142685301", ""]])  # fmt: skip
    await import_file(store, f, "l1", region="FR")
    total, rows = await show_list(store, "l1", limit=1, offset=1)
    assert total == 2 and [(r["name"], r["numbers"]) for r in rows] == [("Bob", ["+33142685301"])]
    with pytest.raises(ImportFileError, match="no contact list 'nope'"):
        await show_list(store, "nope")
    async with store.unit_of_work() as uow:
        uow.session.add(Campaign(name="spring", list_name="l1", queue="q", trunk="t",
                                 state="paused"))  # fmt: skip
    with pytest.raises(ListInUse, match="called by campaign\\(s\\) spring"):
        await delete_list(store, "l1", by="admin tester")
    assert await count(store, Contact) == 2  # nothing deleted
    async with store.unit_of_work() as uow:
        (c,) = (await uow.session.execute(select(Campaign))).scalars()
        c.state = "stopped"
    assert await delete_list(store, "l1", by="admin tester") == 2
    assert await count(store, Contact) == 0 and await count(store, ContactPhone) == 0


def test_cli_admin_verbs(tmp_path: Path) -> None:
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[dialer]\nregion = "FR"\n')
    f = write_csv(tmp_path / "l.csv", [["nom", "tel"], ["A", "0142685300"]])
    base = [sys.executable, "-m", "telephonist.cli.main", "--config", str(config)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, check=False)

    assert run("contacts", "import", str(f), "--list", "l1").returncode == 0
    assert json.loads(run("contacts", "lists", "--json").stdout) == [
        {"list": "l1", "contacts": 1, "numbers": 1}]  # fmt: skip
    shown = json.loads(run("contacts", "show", "l1", "--json").stdout)
    assert shown["contacts"] == 1 and shown["rows"][0]["numbers"] == ["+33142685300"]
    assert run("dnc", "add", "0142685300").returncode == 0
    listed = json.loads(run("dnc", "list", "--json").stdout)
    assert [r["number"] for r in listed["rows"]] == ["+33142685300"]
    removed = run("dnc", "remove", "01 42 68 53 00", "0142685399")
    assert removed.returncode == 0 and "1 removed" in removed.stdout, removed.stderr
    assert "+33142685399: not on the list" in removed.stdout
    assert json.loads(run("dnc", "list", "--json").stdout)["total"] == 0
    assert json.loads(run("campaign", "list", "--json").stdout) == []
    unsure = run("contacts", "delete", "l1")
    assert unsure.returncode == 2 and "needs --yes" in unsure.stderr
    gone = run("contacts", "delete", "nope", "--yes")
    assert gone.returncode == 2 and "no contact list 'nope'" in gone.stderr
    assert run("contacts", "delete", "l1", "--yes").returncode == 0
    assert json.loads(run("contacts", "lists", "--json").stdout) == []
    bad = run("dnc", "list", "--limit", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
