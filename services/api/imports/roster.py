"""Reading a roster CSV and deciding, row by row, what an import would do (pure: no database).

The file is what a spreadsheet saves: UTF-8 with or without a byte-order mark, `,` or `;`
(or tab) between cells, a header line naming the columns. The rows' verdicts depend on the
school's current students and courses, which the caller passes in (`Existing`).
"""

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

Verdict = Literal["create", "update", "unchanged", "refuse"]

# Student numbers name photo files in the ZIP, so they are kept to what a file name can hold
# everywhere: letters, digits, '.', '_' and '-', starting with a letter or digit.
NUMBER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_NAME = 200
MAX_CODE = 64
MAX_COURSES_PER_ROW = 50
# A courses cell lists codes separated by spaces, commas, semicolons or '|' (a ';' file
# quotes nothing, so its codes are often separated by ',' and vice versa).
_CODE_SEPARATORS = re.compile(r"[\s,;|]+")

# Header names people write, reduced to letters and digits, for each column.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "student_number": ("studentnumber", "number", "studentno", "studentid", "matriculation", "id"),
    "name": ("name", "studentname", "fullname"),
    "courses": ("courses", "coursecodes", "course", "coursecode", "codes"),
    "consent": ("consent", "consentgiven", "biometricconsent", "photoconsent"),
}
# A consent cell: yes records consent to biometric processing (README, Security); empty or no
# records nothing. Anything else is a question for a person, not a guess.
CONSENT_YES = frozenset({"yes", "y", "true", "1", "x"})
CONSENT_NO = frozenset({"", "no", "n", "false", "0"})
DELIMITERS = (",", ";", "\t")


class RosterFileError(ValueError):
    """The CSV as a whole cannot be read; the message says why, for a person to fix."""


@dataclass(frozen=True)
class RosterRow:
    line: int  # in the file, the header being line 1
    student_number: str
    name: str
    course_codes: tuple[str, ...]
    problem: str = ""  # set when the line itself is malformed (too many cells, ...)
    consent: bool = False  # the consent column says yes: applying the row records it


@dataclass(frozen=True)
class RosterFile:
    rows: list[RosterRow]
    delimiter: str
    ignored_columns: list[str]
    has_courses: bool


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.casefold())


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the most cells (a header has no quoted
    delimiters in practice; csv.Sniffer guesses wrong on one short line)."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RosterFileError(
            f"the CSV is not UTF-8 text (byte {error.start + 1}): save it as 'CSV UTF-8' from the spreadsheet"
        ) from error


def parse(data: bytes, max_rows: int) -> RosterFile:
    """The file's data rows; raises RosterFileError for a file that cannot be read as a roster."""
    text = decode(data)
    if "\x00" in text:
        raise RosterFileError("the CSV contains NUL bytes: it is not a text file")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise RosterFileError("the CSV is empty: it needs a header line and a line per student")
    delimiter = _sniff_delimiter(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        records = [(reader.line_num, record) for record in reader]
    except csv.Error as error:
        raise RosterFileError(f"the CSV is malformed at line {reader.line_num}: {error}") from error
    records = [(number, record) for number, record in records if any(cell.strip() for cell in record)]
    header = records[0][1]
    columns = _columns(header)
    data_records = records[1:]
    if not data_records:
        raise RosterFileError("the CSV has a header but no student lines")
    if len(data_records) > max_rows:
        raise RosterFileError(
            f"the CSV has {len(data_records)} student lines; at most {max_rows} are imported at once "
            "(API_IMPORT_MAX_ROWS): split it"
        )
    rows = [_row(number, record, columns, len(header)) for number, record in data_records]
    known = set(columns.values())
    ignored = [name.strip() for index, name in enumerate(header) if index not in known and name.strip()]
    return RosterFile(rows, delimiter, ignored, "courses" in columns)


def _columns(header: list[str]) -> dict[str, int]:
    """Each known column's index; raises RosterFileError if a required one is missing."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _key(cell)
        for column, names in COLUMN_NAMES.items():
            if key in names:
                if column in found:
                    raise RosterFileError(f"the header names the {column} column twice: {cell.strip()!r}")
                found[column] = index
    missing = [c for c in ("student_number", "name") if c not in found]
    if missing:
        shown = ", ".join(repr(cell.strip()) for cell in header)
        raise RosterFileError(
            f"the first line must name the columns student_number, name and optionally courses; "
            f"it is {shown} (missing: {', '.join(missing)})"
        )
    return found


def _row(line: int, record: list[str], columns: Mapping[str, int], width: int) -> RosterRow:
    def cell(column: str) -> str:
        index = columns.get(column)
        return record[index].strip() if index is not None and index < len(record) else ""

    codes = tuple(code for code in _CODE_SEPARATORS.split(cell("courses")) if code)
    problem = ""
    if len(record) > width and any(value.strip() for value in record[width:]):
        problem = f"{len(record)} cells, the header has {width} (a delimiter inside a cell needs quotes)"
    consent = cell("consent").casefold()
    if not problem and consent not in CONSENT_YES | CONSENT_NO:
        problem = f"consent {cell('consent')[:40]!r}: write yes, or no (or leave it empty)"
    return RosterRow(
        line, cell("student_number"), cell("name"), codes, problem, consent=consent in CONSENT_YES
    )


@dataclass(frozen=True)
class ExistingStudent:
    id: int
    name: str
    course_codes: frozenset[str]  # casefolded
    photo_count: int
    has_consent: bool = False


@dataclass(frozen=True)
class Existing:
    """What the school has now: students by casefolded number, course codes by casefolded code
    (the database compares both without regard to case)."""

    students: Mapping[str, ExistingStudent]
    courses: Mapping[str, str]  # casefolded code -> the code as stored


@dataclass(frozen=True)
class Decision:
    row: RosterRow
    verdict: Verdict
    reason: str = ""
    changes: tuple[str, ...] = ()
    student_id: int | None = None
    course_codes: tuple[str, ...] = ()  # as stored
    photo_name: str | None = None

    def refused(self, reason: str) -> "Decision":
        return replace(self, verdict="refuse", reason=reason, changes=())


def _refuse(row: RosterRow, reason: str) -> Decision:
    return Decision(row, "refuse", reason)


def _row_problem(row: RosterRow) -> str:
    if row.problem:
        return row.problem
    if not row.student_number:
        return "no student number"
    if not NUMBER_PATTERN.fullmatch(row.student_number):
        return (
            f"bad student number {row.student_number[:70]!r}: letters, digits, '.', '_' and '-' only, "
            "starting with a letter or digit, at most 64"
        )
    if not row.name:
        return "empty name"
    if len(row.name) > MAX_NAME:
        return f"name too long: {len(row.name)} characters, at most {MAX_NAME}"
    if len(row.course_codes) > MAX_COURSES_PER_ROW:
        return f"{len(row.course_codes)} course codes; at most {MAX_COURSES_PER_ROW}"
    return ""


def decide(
    rows: Iterable[RosterRow], existing: Existing, photos: Mapping[str, list[str]] | None
) -> list[Decision]:
    """A verdict per row. `photos`: the ZIP's photo member names by casefolded student number,
    or None without a ZIP (then no photo is needed)."""
    rows = list(rows)
    lines_of: dict[str, list[RosterRow]] = {}
    for row in rows:
        if row.student_number:
            lines_of.setdefault(row.student_number.casefold(), []).append(row)
    decisions = [_decide(row, existing, photos, lines_of) for row in rows]
    return [_with_unread_photo(d, photos) for d in decisions]


def _with_unread_photo(decision: Decision, photos: Mapping[str, list[str]] | None) -> Decision:
    """A refused row still names its photo, so the preview shows which file was left unread."""
    if decision.verdict != "refuse" or decision.photo_name or not photos:
        return decision
    found = photos.get(decision.row.student_number.casefold(), [])
    return replace(decision, photo_name=found[0]) if len(found) == 1 else decision


def _duplicate(row: RosterRow, same: list[RosterRow]) -> str:
    """Why a row sharing its number with others is refused ('' if it is the one kept)."""
    first = same[0]

    def details(r: RosterRow) -> tuple[str, set[str]]:
        return r.name, {code.casefold() for code in r.course_codes}

    identical = all(details(r) == details(first) for r in same)
    if identical:  # the same line twice: the first is kept
        if row is first:
            return ""
        return f"duplicate row: student number {row.student_number} is on line {first.line}"
    others = ", ".join(str(r.line) for r in same if r is not row)
    return (
        f"duplicate student number {row.student_number} with different details on line(s) {others}: "
        "fix the file, none of them is imported"
    )


def _decide(
    row: RosterRow,
    existing: Existing,
    photos: Mapping[str, list[str]] | None,
    lines_of: Mapping[str, list[RosterRow]],
) -> Decision:
    problem = _row_problem(row)
    if problem:
        return _refuse(row, problem)
    number = row.student_number.casefold()
    same = lines_of[number]
    if len(same) > 1:
        problem = _duplicate(row, same)
        if problem:
            return _refuse(row, problem)
    unknown = [code for code in row.course_codes if code.casefold() not in existing.courses]
    if unknown:
        return _refuse(row, f"unknown course code{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    codes = tuple(dict.fromkeys(existing.courses[code.casefold()] for code in row.course_codes))
    found = photos.get(number, []) if photos is not None else []
    if len(found) > 1:
        return _refuse(row, f"{len(found)} photos for {row.student_number} in the ZIP: {', '.join(found)}")
    photo = found[0] if found else None
    student = existing.students.get(number)
    has_photos = student is not None and student.photo_count > 0
    if photos is not None and photo is None and not has_photos:
        return _refuse(row, f"photo missing: no {row.student_number}.jpg (or .jpeg, .png) in the ZIP")
    had_consent = student is not None and student.has_consent
    if photo is not None and not (row.consent or had_consent):
        # Refused before the photo is analysed: no face of theirs is even staged.
        return _refuse(
            row,
            f"no consent to biometric processing recorded for {row.student_number}, so {photo} cannot "
            "be enrolled: write yes in a consent column (or record it on the student's page)",
        )
    if student is None:
        given = ("consent",) if row.consent else ()
        return Decision(row, "create", changes=given, course_codes=codes, photo_name=photo)
    changes = []
    if row.consent and not had_consent:
        changes.append("consent")
    if student.name != row.name:
        changes.append("name")
    added = [code for code in codes if code.casefold() not in student.course_codes]
    if added:
        changes.append(f"courses +{' +'.join(added)}")
    if photo is not None:
        changes.append("photo")
    verdict: Verdict = "update" if changes else "unchanged"
    return Decision(
        row, verdict, changes=tuple(changes), student_id=student.id, course_codes=codes, photo_name=photo
    )
