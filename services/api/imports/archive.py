"""The ZIP of photos of a roster import, inspected before a byte is extracted.

Nothing is ever written to disk from it: members are read one at a time into memory, by
name, so a member's path (`../../etc/x.jpg`) means nothing. A ZIP bomb is refused from the
central directory (members, their declared sizes and compression ratio), and a member whose
header lies about its size is cut at the photo limit while it is read.
"""

import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from services.api.limits import MB

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
# A photo compresses a little; a ratio over this is a bomb, whatever its declared size.
MAX_RATIO = 100
# A directory entry is 46 bytes and its name; names longer than this on average are not photos'.
DIRECTORY_BYTES_PER_ENTRY = 1024
# Files a computer adds to a folder it zips, skipped without a word.
_CLUTTER = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


class ArchiveError(ValueError):
    """The ZIP as a whole is refused; the message says why, for a person to fix."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_member_bytes: int  # one photo, uncompressed (API_MAX_PHOTO_BYTES)
    max_total_bytes: int  # all photos, uncompressed


@dataclass(frozen=True)
class PhotoArchive:
    """The photos found, by casefolded student number (the file name without its suffix), and
    the other members, which are reported but never read."""

    by_number: Mapping[str, list[str]]
    others: list[str]


def _is_clutter(name: str) -> bool:
    return name.startswith(_CLUTTER[0]) or PurePosixPath(name).name in _CLUTTER[1:]


def _check_directory(file: IO[bytes], limits: ArchiveLimits) -> None:
    """Refuse a directory too large to parse from its end record alone: zipfile builds an object
    of some 500 bytes per entry, so a ZIP of nothing but directory entries (46 bytes each) would
    take gigabytes before the member count could be checked. Clutter (`__MACOSX/`) and folders
    are entries too, hence the margin."""
    try:
        end = zipfile._EndRecData(file)  # type: ignore[attr-defined]  # private, stable since Python 2
    except OSError as error:
        raise ArchiveError(f"the photos file is not a ZIP archive ({error})") from error
    if not end:
        raise ArchiveError("the photos file is not a ZIP archive (no end of central directory)")
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    most = 3 * limits.max_members + 100
    if entries > most or size > most * DIRECTORY_BYTES_PER_ENTRY:
        raise ArchiveError(
            f"the ZIP's directory lists {entries} entries in {size / MB:.1f} MB; at most "
            f"{limits.max_members} files (API_IMPORT_MAX_ROWS)"
        )
    file.seek(0)


def inspect(file: IO[bytes], limits: ArchiveLimits) -> PhotoArchive:
    """Check the ZIP's directory; raises ArchiveError for one that is not a ZIP or is too big."""
    _check_directory(file, limits)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"the photos file is not a ZIP archive ({error})") from error
    with archive:
        members = [
            info for info in archive.infolist() if not info.is_dir() and not _is_clutter(info.filename)
        ]
        if len(members) > limits.max_members:
            raise ArchiveError(
                f"the ZIP holds {len(members)} files; at most {limits.max_members} (API_IMPORT_MAX_ROWS)"
            )
        total = sum(info.file_size for info in members)
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"the ZIP's files add up to {total / MB:.1f} MB uncompressed; at most "
                f"{limits.max_total_bytes / MB:.1f} MB (API_IMPORT_MAX_UNZIPPED_MB)"
            )
        by_number: dict[str, list[str]] = {}
        others: list[str] = []
        for info in members:
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > MB:
                raise ArchiveError(
                    f"{info.filename} compresses {info.file_size // info.compress_size}:1: "
                    "not a photo (a ZIP bomb?)"
                )
            path = PurePosixPath(info.filename.replace("\\", "/"))
            if path.suffix.lower() in PHOTO_SUFFIXES and path.stem:
                by_number.setdefault(path.stem.casefold(), []).append(info.filename)
            else:
                others.append(info.filename)
    return PhotoArchive(by_number, others)


class MemberTooLargeError(ValueError):
    """A member is larger than a photo may be; its args[0] is its size in bytes."""


def read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """One member's bytes; raises MemberTooLargeError past `max_bytes` (declared or real),
    ArchiveError if it cannot be read (encrypted, corrupt)."""
    info = archive.getinfo(name)
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{name} is encrypted")
    if info.file_size > max_bytes:
        raise MemberTooLargeError(info.file_size)
    try:
        with archive.open(info) as member:
            data = member.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
        # RuntimeError: zipfile's way of saying a member needs a password.
        raise ArchiveError(f"{name} cannot be read from the ZIP ({error})") from error
    if len(data) > max_bytes:
        raise MemberTooLargeError(len(data))
    return data
