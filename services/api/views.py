"""Stored records -> response bodies. Times from MySQL are naive UTC and leave aware."""

from services.api.queries.attendance import Roll
from services.api.queries.courses import Course
from services.api.schemas import (
    CameraOut,
    CourseOut,
    MarkOut,
    RollEntryOut,
    SessionAttendanceOut,
    SessionOut,
    StudentOut,
)
from services.common.attendance import AttendanceMark, as_utc
from services.common.sessions import Camera, ClassSession
from services.common.students import Student


def student_out(student: Student) -> StudentOut:
    return StudentOut(
        id=student.id,
        student_number=student.student_number,
        name=student.name,
        photo_count=student.photo_count,
        created_at=as_utc(student.created_at),
    )


def camera_out(camera: Camera) -> CameraOut:
    return CameraOut(id=camera.id, name=camera.name, source=camera.source, last_frame_at=camera.last_frame_at)


def course_out(course: Course) -> CourseOut:
    return CourseOut(id=course.id, code=course.code, name=course.name, student_ids=course.student_ids)


def session_out(session: ClassSession) -> SessionOut:
    return SessionOut(
        id=session.id,
        name=session.name,
        camera_id=session.camera_id,
        course_id=session.course_id,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        is_default=session.is_default,
    )


def mark_out(mark: AttendanceMark) -> MarkOut:
    return MarkOut(
        attendance_id=mark.attendance_id,
        session_id=mark.session_id,
        session_name=mark.session_name,
        camera_id=mark.camera_id,
        student_id=mark.student_id,
        student_number=mark.student_number,
        student_name=mark.student_name,
        status=mark.status,
        first_seen_at=mark.first_seen_at,
        last_seen_at=mark.last_seen_at,
        distance=mark.distance,
        sightings=mark.sightings,
    )


def session_attendance_out(session: ClassSession, roll: Roll) -> SessionAttendanceOut:
    return SessionAttendanceOut(
        session=session_out(session),
        expected=roll.expected,
        present=roll.present,
        students=[
            RollEntryOut(
                student_id=e.student_id,
                student_number=e.student_number,
                name=e.name,
                status=e.status,
                first_seen_at=e.first_seen_at,
                last_seen_at=e.last_seen_at,
                distance=e.distance,
                expected=e.expected,
            )
            for e in roll.entries
        ],
    )
