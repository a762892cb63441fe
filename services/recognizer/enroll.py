"""Enroll students from photos, before (or without) the API.

    python -m services.recognizer.enroll --number S001 --name "Ada Lovelace" \
        --consent "signed form, 2026-09-01" ada1.jpg ada2.jpg
    python -m services.recognizer.enroll --folder class_photos/ --consent "signed forms, term 1"

With --folder, each subfolder is one student: its name is the student number, and the
student's name is the folder name with `_` as spaces (`ada_lovelace` -> "Ada Lovelace").
Every photo must show exactly one face; a refused photo is
reported with the reason and the rest carry on. The recognizers reload their gallery at the end.

No photo is stored for a student without recorded consent to biometric processing. --consent
NOTE records it (by "command line", with the note) for the students who have none; without
it, the photos of those students are refused.
"""

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from services.common import topology
from services.common.amqp import Publisher
from services.common.db import create_engine, wait_for_database
from services.common.logs import setup_logging
from services.common.messages import GalleryChanged
from services.common.settings import BrokerSettings, DatabaseSettings, load_settings
from services.common.students import (
    Consent,
    ConsentMissingError,
    add_face_encoding,
    create_student,
    find_student_by_number,
    give_consent,
)
from services.common.transport import Outgoing
from services.faces.enrollment import (
    DEFAULT_MIN_FACE_PX,
    PhotoRejectedError,
    analyze_photo,
    enrollment_analyzer,
)
from services.faces.settings import RecognitionSettings

logger = logging.getLogger("services.recognizer.enroll")

CLI_ACTOR = "command line"  # as the audit log names it
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class EnrollSettings(RecognitionSettings, BrokerSettings, DatabaseSettings):
    pass


@dataclass(frozen=True)
class StudentPhotos:
    number: str
    name: str
    photos: list[Path]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.recognizer.enroll",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("photos", nargs="*", type=Path, help="photos of one student (with --number, --name)")
    parser.add_argument("--number", help="the student number (unique)")
    parser.add_argument("--name", help="the student's name")
    parser.add_argument("--folder", type=Path, help="a folder with one subfolder of photos per student")
    parser.add_argument(
        "--min-face-px",
        type=int,
        default=DEFAULT_MIN_FACE_PX,
        help=f"refuse faces smaller than this (default {DEFAULT_MIN_FACE_PX})",
    )
    parser.add_argument(
        "--consent",
        metavar="NOTE",
        help="record consent to biometric processing for students without it, with this note "
        "(where the consent is, e.g. a signed form); without it their photos are refused",
    )
    parser.add_argument("--check-config", action="store_true", help="print the settings and exit")
    args = parser.parse_args(argv)
    if not args.check_config and bool(args.folder) == bool(args.photos):
        parser.error("give either photos (with --number and --name) or --folder")
    if args.photos and not (args.number and args.name):
        parser.error("photos need --number and --name")
    return args


def students_in_folder(folder: Path) -> list[StudentPhotos]:
    students = []
    for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = sorted(p for p in directory.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        students.append(StudentPhotos(directory.name, directory.name.replace("_", " ").title(), photos))
    return students


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    settings = load_settings(EnrollSettings, argv)
    setup_logging("enroll", settings.log_level)
    students = (
        students_in_folder(args.folder)
        if args.folder
        else [StudentPhotos(args.number, args.name, args.photos)]
    )
    engine = create_engine(settings)
    wait_for_database(engine)
    analyzer = enrollment_analyzer(settings.recognizer_enroll_jitters)
    added = refused = 0
    total = sum(len(s.photos) for s in students)
    done = 0
    for student in students:
        with engine.begin() as connection:
            record = find_student_by_number(connection, student.number) or create_student(
                connection, student.number, student.name
            )
            if args.consent is not None:
                give_consent(connection, record.id, Consent(CLI_ACTOR, args.consent))
        for path in student.photos:
            done += 1
            try:
                photo = analyze_photo(path.read_bytes(), analyzer, args.min_face_px)
            except (PhotoRejectedError, OSError) as error:
                refused += 1
                logger.error("[%d/%d] %s: refused: %s", done, total, path, error)
                continue
            try:
                with engine.begin() as connection:
                    stored = add_face_encoding(connection, record.id, photo)
            except ConsentMissingError as error:
                refused += 1
                logger.error("[%d/%d] %s: refused: %s (give --consent)", done, total, path, error)
                continue
            added += stored
            logger.info(
                "[%d/%d] %s: %s %s (face %d px)",
                done,
                total,
                path,
                "enrolled for" if stored else "already enrolled for",
                record.student_number,
                photo.face_px,
            )
    if added:
        publisher = Publisher(settings, "enroll")
        publisher.publish(
            Outgoing(topology.GALLERY_EXCHANGE, "", GalleryChanged(reason=f"enrolled {added} photos"))
        )
        publisher.close()
    logger.info("%d photo(s) enrolled, %d refused, %d student(s)", added, refused, len(students))
    return 1 if refused else 0


if __name__ == "__main__":
    raise SystemExit(main())
