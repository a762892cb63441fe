"""The roster import's pure parts (services/api/imports/roster.py, archive.py): reading a CSV as
a spreadsheet saves it, the verdict of each row, and a ZIP judged before it is extracted."""

import io
import random
import zipfile

import pytest

from services.api.imports import archive, roster
from services.api.imports.roster import Existing, ExistingStudent, RosterFileError, RosterRow

NOBODY = Existing(students={}, courses={"math101": "MATH101", "phy2": "PHY2"})
LIMITS = archive.ArchiveLimits(max_members=10, max_member_bytes=1000, max_total_bytes=5000)


def rows_of(text: str | bytes, max_rows: int = 100) -> list[RosterRow]:
    data = text.encode() if isinstance(text, str) else text
    return roster.parse(data, max_rows).rows


def test_a_spreadsheet_save_with_a_bom_semicolons_and_crlf_is_read() -> None:
    data = (
        "\ufeffStudent Number;Name;Courses;Email\r\nS001;Ada Lovelace;MATH101 PHY2;a@x\r\n\r\nS002;Bob;;\r\n"
    )
    parsed = roster.parse(data.encode(), 100)
    assert parsed.delimiter == ";"
    assert parsed.ignored_columns == ["Email"]
    assert parsed.rows == [
        RosterRow(2, "S001", "Ada Lovelace", ("MATH101", "PHY2")),
        RosterRow(4, "S002", "Bob", ()),
    ]


def test_commas_quotes_and_codes_separated_by_semicolons_in_a_quoted_cell() -> None:
    rows = rows_of('student_number,name,course codes\nS001,"Lovelace, Ada","MATH101; PHY2"\n')
    assert rows == [RosterRow(2, "S001", "Lovelace, Ada", ("MATH101", "PHY2"))]


def test_a_header_without_courses_is_a_roster_without_courses() -> None:
    parsed = roster.parse(b"number\tname\nS1\tAda\n", 100)
    assert (parsed.delimiter, parsed.has_courses, parsed.rows) == (
        "\t",
        False,
        [RosterRow(2, "S1", "Ada", ())],
    )


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "the CSV is empty"),
        (b"\n\n  \n", "the CSV is empty"),
        (b"student_number,name\n", "a header but no student lines"),
        (b"S001,Ada Lovelace\nS002,Bob\n", "the first line must name the columns"),
        (b"name,courses\nAda,MATH101\n", "missing: student_number"),
        (b'student_number,name\nS001,"Ada\n', "malformed at line"),
        (b"student_number,name\nS001,Ad\x00a\n", "NUL bytes"),
        ("student_number,name\nS001,Zoë\n".encode("latin-1"), "not UTF-8"),
        (b"number,student number,name\n1,2,x\n", "names the student_number column twice"),
        (b"student_number,name\n" + b"S,x\n" * 11, "at most 10"),
    ],
)
def test_a_file_that_is_no_roster_is_refused_with_why(data: bytes, says: str) -> None:
    with pytest.raises(RosterFileError, match=says):
        roster.parse(data, 10)


def verdicts(
    text: str, existing: Existing = NOBODY, photos: dict[str, list[str]] | None = None
) -> list[tuple[str, str]]:
    return [(d.verdict, d.reason) for d in roster.decide(rows_of(text), existing, photos)]


def test_bad_rows_are_refused_each_with_its_reason() -> None:
    text = (
        "student_number,name,courses\n"
        "S001,Ada,MATH101\n"
        ",Nobody,\n"
        "S 02,Spaced,\n"
        "S003,,\n"
        "S004,Cy,BIO9 CHEM1\n"
        "S005,Di,math101\n"
        "S006,Ed,MATH101,extra cell\n"
    )
    assert verdicts(text) == [
        ("create", ""),
        ("refuse", "no student number"),
        (
            "refuse",
            "bad student number 'S 02': letters, digits, '.', '_' and '-' only, starting with a letter or digit, at most 64",
        ),
        ("refuse", "empty name"),
        ("refuse", "unknown course codes: BIO9, CHEM1"),
        ("create", ""),  # course codes match whatever their case, as the database compares them
        ("refuse", "4 cells, the header has 3 (a delimiter inside a cell needs quotes)"),
    ]
    decided = roster.decide(rows_of(text), NOBODY, None)
    assert decided[5].course_codes == ("MATH101",)


def test_a_number_twice_keeps_an_identical_first_line_and_refuses_conflicting_ones() -> None:
    text = "student_number,name\nS001,Ada\ns001,Ada\nS002,Bob\nS002,Robert\n"
    assert verdicts(text) == [
        ("create", ""),
        ("refuse", "duplicate row: student number s001 is on line 2"),
        (
            "refuse",
            "duplicate student number S002 with different details on line(s) 5: fix the file, none of them is imported",
        ),
        (
            "refuse",
            "duplicate student number S002 with different details on line(s) 4: fix the file, none of them is imported",
        ),
    ]


def test_an_existing_student_is_updated_with_what_changes_or_left_unchanged() -> None:
    existing = Existing(
        students={
            "s001": ExistingStudent(7, "Ada Lovelace", frozenset({"math101"}), photo_count=2),
            "s002": ExistingStudent(8, "Bob", frozenset(), photo_count=0),
        },
        courses=NOBODY.courses,
    )
    text = "student_number,name,courses\nS001,Ada Lovelace,MATH101\nS002,Robert,PHY2 MATH101\n"
    decided = roster.decide(rows_of(text), existing, None)
    assert [(d.verdict, d.changes, d.student_id) for d in decided] == [
        ("unchanged", (), 7),
        ("update", ("name", "courses +PHY2 +MATH101"), 8),
    ]


def test_with_a_zip_a_student_left_without_any_photo_is_refused() -> None:
    existing = Existing(
        students={"s001": ExistingStudent(7, "Ada", frozenset(), photo_count=2)}, courses=NOBODY.courses
    )
    text = "student_number,name,consent\nS001,Ada,\nS002,Bob,yes\nS003,Cy,yes\nS004,Di,yes\n"
    photos = {"s002": ["class/S002.jpg"], "s004": ["S004.jpg", "S004.png"]}
    decided = roster.decide(rows_of(text), existing, photos)
    assert [(d.verdict, d.reason, d.photo_name) for d in decided] == [
        ("unchanged", "", None),  # has photos already: none needed
        ("create", "", "class/S002.jpg"),
        ("refuse", "photo missing: no S003.jpg (or .jpeg, .png) in the ZIP", None),
        ("refuse", "2 photos for S004 in the ZIP: S004.jpg, S004.png", None),
    ]
    # Without a ZIP nobody needs a photo.
    assert [d.verdict for d in roster.decide(rows_of(text), existing, None)] == [
        "unchanged",
        "create",
        "create",
        "create",
    ]


def a_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as file:
        for name, data in members.items():
            file.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_a_zip_lists_its_photos_by_number_and_skips_what_a_computer_adds() -> None:
    found = archive.inspect(
        a_zip(
            {
                "class/S001.JPG": b"x",
                "S002.png": b"y",
                "__MACOSX/._S001.JPG": b"z",
                "notes.txt": b"t",
                "class/.DS_Store": b"",
            }
        ),
        LIMITS,
    )
    assert found.by_number == {"s001": ["class/S001.JPG"], "s002": ["S002.png"]}
    assert found.others == ["notes.txt"]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: io.BytesIO(b"PK\x03\x04 not really"), "not a ZIP archive"),
        (lambda: io.BytesIO(b"student_number,name\n"), "not a ZIP archive"),
        (lambda: a_zip({f"S{n}.jpg": b"x" for n in range(11)}), "holds 11 files; at most 10"),
        (lambda: a_zip({"S1.jpg": b"\0" * 3000, "S2.jpg": b"\0" * 3000}), "add up to"),
    ],
)
def test_a_zip_refused_before_anything_is_extracted(make, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(archive.ArchiveError, match=says):
        archive.inspect(make(), LIMITS)


def test_a_directory_too_long_to_parse_is_refused_from_its_end_record() -> None:
    # Folders only: no file to count, yet every entry would cost zipfile an object to parse.
    folders = io.BytesIO()
    with zipfile.ZipFile(folders, "w") as file:
        for n in range(200):
            file.mkdir(f"d{n}")
    folders.seek(0)
    with pytest.raises(archive.ArchiveError, match="the ZIP's directory lists 200 entries"):
        archive.inspect(folders, LIMITS)


def test_a_zip_bomb_is_refused_from_its_directory() -> None:
    bomb = a_zip({"S001.jpg": b"\0" * (3 * 1024 * 1024)})
    limits = archive.ArchiveLimits(max_members=10, max_member_bytes=10**8, max_total_bytes=10**9)
    with pytest.raises(archive.ArchiveError, match=r"S001.jpg compresses \d+:1: not a photo"):
        archive.inspect(bomb, limits)


def test_a_member_is_read_at_most_to_the_photo_limit() -> None:
    with zipfile.ZipFile(a_zip({"S1.jpg": b"a" * 500, "S2.jpg": b"b" * 1500})) as file:
        assert archive.read_member(file, "S1.jpg", 1000) == b"a" * 500
        with pytest.raises(archive.MemberTooLargeError):
            archive.read_member(file, "S2.jpg", 1000)


def test_a_corrupt_member_is_an_archive_error() -> None:
    data = bytearray(a_zip({"S1.jpg": random.Random(1).randbytes(2000)}).getvalue())
    start = data.index(b"S1.jpg") + len("S1.jpg")
    data[start + 500 : start + 520] = b"\xff" * 20  # inside the compressed bytes
    with (
        zipfile.ZipFile(io.BytesIO(bytes(data))) as file,
        pytest.raises(archive.ArchiveError, match="cannot be read"),
    ):
        archive.read_member(file, "S1.jpg", 10_000)


def test_a_photo_without_consent_is_refused_and_a_yes_records_it() -> None:
    existing = Existing(
        students={
            "s001": ExistingStudent(7, "Ada", frozenset(), photo_count=0, has_consent=True),
            "s002": ExistingStudent(8, "Bob", frozenset(), photo_count=0),
        },
        courses=NOBODY.courses,
    )
    text = "number;name;Consent\nS001;Ada;\nS002;Bob;no\nS003;Cy;\nS004;Di;YES\nS005;Ed;maybe\nS006;Flo;x\n"
    photos = {f"s00{n}": [f"S00{n}.jpg"] for n in range(1, 7)}
    decided = roster.decide(rows_of(text), existing, photos)
    assert [(d.verdict, d.changes) for d in decided] == [
        ("update", ("photo",)),  # consent already recorded for Ada
        ("refuse", ()),
        ("refuse", ()),
        ("create", ("consent",)),
        ("refuse", ()),
        ("create", ("consent",)),
    ]
    assert decided[1].reason == (
        "no consent to biometric processing recorded for S002, so S002.jpg cannot be enrolled: "
        "write yes in a consent column (or record it on the student's page)"
    )
    assert decided[4].reason == "consent 'maybe': write yes, or no (or leave it empty)"
    # Without photos, a yes still records consent; nobody is refused for lacking it.
    no_photos = roster.decide(rows_of("number,name,consent\nS002,Bob,yes\nS003,Cy,\n"), existing, None)
    assert [(d.verdict, d.changes) for d in no_photos] == [("update", ("consent",)), ("create", ())]


def test_a_refused_row_still_names_its_photo_which_is_left_unread() -> None:
    decided = roster.decide(rows_of("student_number,name\nS001,\n"), NOBODY, {"s001": ["S001.jpg"]})
    assert [(d.verdict, d.reason, d.photo_name) for d in decided] == [("refuse", "empty name", "S001.jpg")]
