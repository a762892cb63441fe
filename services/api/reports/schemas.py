"""What the report routes answer (pydantic), built from the records of `queries`."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from services.api.reports.queries import (
    CourseRef,
    CourseReport,
    Mark,
    SessionReport,
    StudentRef,
    StudentReport,
)
from services.api.reports.rates import Tally
from services.api.schemas import SessionOut, TermOut, UtcDateTime

Status = Literal["present", "late", "absent", "excused", "not_seen"]
State = Literal["scheduled", "running", "ended"]
Source = Literal["recognition", "person", "system"]


class CountsOut(BaseModel):
    present: int
    late: int
    absent: int
    excused: int
    not_seen: int = Field(description="No status yet: the session runs, or its absences are not decided yet")
    counted: int = Field(description="present + late + absent: the rate's denominator")
    rate: float | None = Field(
        ge=0,
        le=1,
        description="(present + late) / (present + late + absent); excused and not_seen are left "
        "out; null when nothing is counted",
    )

    @classmethod
    def of(cls, counts: Tally) -> "CountsOut":
        return cls(
            present=counts.present,
            late=counts.late,
            absent=counts.absent,
            excused=counts.excused,
            not_seen=counts.not_seen,
            counted=counts.counted,
            rate=counts.rate,
        )


class CourseRefOut(BaseModel):
    id: int
    code: str
    name: str

    @classmethod
    def of(cls, course: CourseRef) -> "CourseRefOut":
        return cls(id=course.id, code=course.code, name=course.name)


def _course(course: CourseRef | None) -> CourseRefOut | None:
    return None if course is None else CourseRefOut.of(course)


class StudentRefOut(BaseModel):
    id: int
    student_number: str
    name: str

    @classmethod
    def of(cls, student: StudentRef) -> "StudentRefOut":
        return cls(id=student.id, student_number=student.student_number, name=student.name)


class MarkDetails(BaseModel):
    """A status's times and who set it (all null without a row)."""

    first_seen_at: UtcDateTime | None = None
    last_seen_at: UtcDateTime | None = None
    source: Source | None = Field(
        None, description="Who set the status now: recognition, a person or the system"
    )
    reason: str = Field("", description="Why (a person's or the system's reason)")
    confidence: str | None = Field(None, description='Recognition\'s tier: "check" is thin evidence')

    @staticmethod
    def fields(mark: Mark | None) -> dict[str, object]:
        if mark is None:
            return {}
        return {
            "first_seen_at": mark.first_seen_at,
            "last_seen_at": mark.last_seen_at,
            "source": mark.source,
            "reason": mark.reason,
            "confidence": mark.confidence,
        }


class RollLineOut(MarkDetails):
    student: StudentRefOut
    on_roster: bool = Field(
        description="False: marked without being on the roster (a guest, or removed since)"
    )
    status: Status


class SessionReportOut(BaseModel):
    session: SessionOut
    course: CourseRefOut | None
    state: State
    finalized: bool = Field(description="The recorder decided its absences (it has ended)")
    counts: CountsOut = Field(description="Of the roster; of everyone marked, for a session without a course")
    students: list[RollLineOut] = Field(description="The roster by name, then anyone else marked")

    @classmethod
    def of(cls, report: SessionReport) -> "SessionReportOut":
        return cls(
            session=SessionOut.model_validate(report.session),
            course=_course(report.course),
            state=report.state,
            finalized=report.finalized,
            counts=CountsOut.of(report.tally),
            students=[
                RollLineOut(
                    student=StudentRefOut.of(line.student),
                    on_roster=line.on_roster,
                    status=line.status,
                    **MarkDetails.fields(line.mark),
                )
                for line in report.lines
            ],
        )


class StudentSessionOut(MarkDetails):
    session: SessionOut
    course: CourseRefOut | None
    state: State
    status: Status


class CourseCountsOut(BaseModel):
    course: CourseRefOut | None = Field(description="null: sessions without a course")
    counts: CountsOut


class StudentReportOut(BaseModel):
    student: StudentRefOut
    start: date
    end: date
    counts: CountsOut
    courses: list[CourseCountsOut] = Field(description="The same counts, course by course")
    sessions: list[StudentSessionOut] = Field(description="Started sessions of the range, by start")

    @classmethod
    def of(cls, report: StudentReport) -> "StudentReportOut":
        return cls(
            student=StudentRefOut.of(report.student),
            start=report.first_day,
            end=report.last_day,
            counts=CountsOut.of(report.tally),
            courses=[
                CourseCountsOut(course=_course(entry.course), counts=CountsOut.of(entry.tally))
                for entry in report.courses
            ],
            sessions=[
                StudentSessionOut(
                    session=SessionOut.model_validate(line.session),
                    course=_course(line.course),
                    state=line.state,
                    status=line.status,
                    **MarkDetails.fields(line.mark),
                )
                for line in report.lines
            ],
        )


class SessionColumnOut(BaseModel):
    session: SessionOut
    state: State
    counts: CountsOut = Field(description="Of the roster in this session")


class StudentRowOut(BaseModel):
    student: StudentRefOut
    on_roster: bool
    statuses: list[Status] = Field(description="One per session, in the order of `sessions`")
    counts: CountsOut
    below_threshold: bool


class CourseReportOut(BaseModel):
    course: CourseRefOut
    term: TermOut
    threshold_percent: float = Field(ge=0, le=100)
    counts: CountsOut = Field(description="Every cell of the roster's rows")
    sessions: list[SessionColumnOut] = Field(description="The term's started sessions, by start")
    students: list[StudentRowOut] = Field(description="The roster by name, then anyone else marked")
    below_threshold: list[StudentRowOut] = Field(
        description="Students with a rate under threshold_percent, lowest first"
    )

    @classmethod
    def of(cls, report: CourseReport) -> "CourseReportOut":
        rows = [
            StudentRowOut(
                student=StudentRefOut.of(line.student),
                on_roster=line.on_roster,
                statuses=line.statuses,
                counts=CountsOut.of(line.tally),
                below_threshold=line.below,
            )
            for line in report.students
        ]
        below = sorted((row for row in rows if row.below_threshold), key=lambda row: row.counts.rate or 0.0)
        return cls(
            course=CourseRefOut.of(report.course),
            term=TermOut.model_validate(report.term),
            threshold_percent=report.threshold_percent,
            counts=CountsOut.of(report.tally),
            sessions=[
                SessionColumnOut(
                    session=SessionOut.model_validate(column.session),
                    state=column.state,
                    counts=CountsOut.of(column.tally),
                )
                for column in report.sessions
            ],
            students=rows,
            below_threshold=below,
        )
