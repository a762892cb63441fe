"""From what the system recorded and what really happened: who was marked, missed, wrongly
marked, and every identity event that named the wrong person."""

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from bench.evaluate.system import Enrollment, RunResult
from bench.evaluate.truth import Truth

CAPTURE_MAX_WIDTH = 1280  # capture's default: wider frames (and their boxes) are scaled down


def build_report(result: RunResult, truth: Truth, enrollment: Enrollment) -> dict[str, Any]:
    s = result.settings
    fps = truth.fps or s.video_fps
    # Which frame of the file a published frame is: every frame when capture publishes them all.
    step = 1.0 if s.capture_fps <= 0 or s.capture_fps >= fps else fps / s.capture_fps
    scale = 1.0
    if truth.width and truth.width > CAPTURE_MAX_WIDTH:
        scale = truth.width / CAPTURE_MAX_WIDTH
    lesson_marks = [
        m for m in result.marks if result.session_id is None or m["session_id"] == result.session_id
    ]
    elsewhere = [m for m in result.marks if m not in lesson_marks]
    marked = {m["student_number"] for m in lesson_marks}
    expected = truth.expected
    wrong_marks = []
    for m in sorted(lesson_marks, key=lambda m: m["student_number"]):
        number = m["student_number"]
        if number in expected:
            continue
        if truth.roster is not None and number not in truth.roster:
            why = f"not on the roster ({truth.role(number)})"
        else:
            why = f"not present ({truth.role(number)})"
        wrong_marks.append({**m, "why": why})

    located = bool(truth.boxes)
    wrong_events = []
    at_place: dict[str, Counter[str]] = defaultdict(Counter)  # who really was there -> what they were called
    closest: dict[tuple[str, str], float] = {}  # (who was there, what they were called) -> best distance
    track_really: dict[str, Counter[str]] = defaultdict(Counter)  # track id -> who was really there
    for event in result.events:
        if result.media_start is not None:  # the file's own time, whatever capture published
            offset = datetime.fromisoformat(event["captured_at"]) - result.media_start
            frame = round(offset.total_seconds() * fps)
        else:
            frame = round(event["frame_seq"] * step)
        media_s = round(frame / fps, 2)
        really = None
        if located and event.get("box"):
            box = event["box"]
            centre = ((box["left"] + box["right"]) / 2 * scale, (box["top"] + box["bottom"]) / 2 * scale)
            really = truth.who_at(frame, centre)
            if really is not None and event.get("track_id"):
                track_really[str(event["track_id"])][really] += 1
            if really is not None:
                called = event["student_number"] if event["kind"] == "recognized" else "unknown"
                at_place[really][called] += 1
                if event["distance"] is not None:
                    nearest = closest.get((really, called))
                    closest[(really, called)] = min(event["distance"], nearest or event["distance"])
        if event["kind"] != "recognized":
            continue
        named = event["student_number"]
        if located and event.get("box"):
            if really == named and named in expected:
                continue
            if really is None:
                why = "nobody was drawn there"
            elif really == named:
                why = f"is {named} ({truth.role(named)}), not in the class's roll"
            else:
                why = f"was {really} ({truth.role(really)})"
        else:
            if named in expected:
                continue
            why = f"{named} is {truth.role(named)}"
        wrong_events.append(
            {
                "frame": frame,
                "media_s": media_s,
                "named": named,
                "named_role": truth.role(named),
                "really": really,
                "why": why,
                "distance": event["distance"],
                "margin": event.get("margin"),
                "tracked": event["tracked"],
                "worker": event.get("worker"),
                "track_id": event.get("track_id"),
                "tier": event.get("tier"),
                "event_id": event["event_id"],
            }
        )
    missed = []
    for number in sorted(expected - marked):
        calls = at_place.get(number, Counter())
        if not enrollment.faces.get(number):
            note = (
                "not enrolled: every photo refused"
                if number in enrollment.faces
                else "not in the enrollment folder"
            )
        elif not calls:
            note = "never detected" if located else ""
        else:
            note = ", ".join(
                f"{who} x{n}" + (f" (best {closest[(number, who)]:.3f})" if (number, who) in closest else "")
                for who, n in calls.most_common(4)
            )
        missed.append({"student_number": number, "name": truth.names.get(number, number), "seen_as": note})
    review = _review(result.review, track_really, expected - marked)
    per_worker = Counter(str(b.get("worker")) for b in result.analyzed)
    kinds = Counter(e["kind"] for e in result.events)
    db_marks = {(m["session_id"], m["student_number"]) for m in result.marks}
    csv_marks = {(int(r["session_id"]), r["student_number"]) for r in result.csv_rows if r.get("session_id")}
    return {
        "run": {
            "recognizers": s.recognizers,
            "pace": s.pace,
            "speed": s.speed if s.pace == "realtime" else None,
            "capture_fps": s.capture_fps,
            "media_start": result.media_start.isoformat() if result.media_start else None,
            "killed": result.killed,
            "wall_s": round(result.wall_s, 1),
            "frames_published": result.frames_published,
            "frames_analyzed": len(result.analyzed),
            "frames_per_worker": dict(sorted(per_worker.items())),
            "logs": result.logs,
        },
        "enrollment": {
            "students": sum(1 for f in enrollment.faces.values() if f),
            "photos": sum(len(f) for f in enrollment.faces.values()),
            "refused": [{"student_number": n, "photo": p, "reason": r} for n, p, r in enrollment.refused],
        },
        "session_id": result.session_id,
        "roster": sorted(truth.roster) if truth.roster is not None else None,
        "expected": sorted(expected),
        "marked": sorted(marked & expected),
        # Marked on thin evidence: shown to the teacher as "check" to confirm.
        "marked_check": sorted(
            m["student_number"]
            for m in lesson_marks
            if m.get("confidence") == "check" and m["student_number"] in expected
        ),
        "missed": missed,
        "wrongly_marked": wrong_marks,
        "marks_outside_lesson_session": elsewhere,
        "roll": sorted(marked),
        "events": {
            "total": len(result.events),
            "recognized": kinds.get("recognized", 0),
            "unknown": kinds.get("unknown", 0),
            "tracked": sum(e["tracked"] for e in result.events),
            "located": located,
        },
        "wrong_name_events": wrong_events,
        "review": review,
        "consistency": {
            "marks_in_db": len(result.marks),
            "csv_rows": len(result.csv_rows),
            "csv_agrees_with_db": db_marks == csv_marks and len(result.csv_rows) == len(result.marks),
            "events_only_on_the_broker": result.tap_only,
            "events_without_box": sum(1 for e in result.events if not e.get("box")),
        },
        "database_url": result.database_url,
    }


def _review(
    items: list[dict[str, Any]], track_really: dict[str, Counter[str]], missed: set[str]
) -> dict[str, Any]:
    """What the review queue asks of the teacher: how many of the missed wait there suggested
    as themselves (one click marks them), and how many suggestions name someone else than the
    person who was really there (the teacher must not just click them)."""
    found: set[str] = set()
    wrong = 0
    for item in items:
        seen = track_really.get(str(item["track_id"]))
        really = seen.most_common(1)[0][0] if seen else None
        if item["state"] == "open" and really in missed and item["candidate"] == really:
            found.add(really)
        if item["candidate"] is not None and really is not None and item["candidate"] != really:
            wrong += 1
    return {
        "items": len(items),
        "open": sum(1 for i in items if i["state"] == "open"),
        "missed_suggested_as_themselves": sorted(found),
        "suggestions_naming_someone_else": wrong,
    }


def run_label(report: dict[str, Any]) -> str:
    run = report["run"]
    pace = f"{run['speed']:g}x" if run["pace"] == "realtime" else "fast"
    label = f"{run['recognizers']} rec, {pace}"
    if run["killed"]:
        label += f", w1 killed @{run['killed']['media_s']:g}s"
    return label


def render_report(report: dict[str, Any], truth: Truth) -> str:
    lines: list[str] = []
    run = report["run"]
    lines.append(f"\n=== {run_label(report)} ===")
    lines.append(
        f"frames: {run['frames_published']} published, {run['frames_analyzed']} analyzed "
        f"{run['frames_per_worker']}; {run['wall_s']}s from capture start to idle"
    )
    e = report["enrollment"]
    lines.append(
        f"enrollment: {e['students']} students, {e['photos']} photos; {len(e['refused'])} photos refused"
    )
    for refused in e["refused"][:10]:
        lines.append(f"  refused {refused['student_number']}/{refused['photo']}: {refused['reason']}")
    if len(e["refused"]) > 10:
        lines.append(f"  ... and {len(e['refused']) - 10} more")
    ev = report["events"]
    lines.append(
        f"identity events: {ev['total']} ({ev['recognized']} recognized, {ev['tracked']} of them tracked, "
        f"{ev['unknown']} unknown)"
    )
    expected = report["expected"]
    lines.append(
        f"\nMarked ({len(report['marked'])} of {len(expected)} expected, "
        f'{len(report["marked_check"])} of them on "check"):'
    )
    lines.append("  " + (", ".join(report["marked"]) or "nobody"))
    lines.append(f"\nMissed ({len(report['missed'])}):")
    for m in report["missed"]:
        lines.append(f"  {m['student_number']}  {m['name']:<28} {m['seen_as']}")
    r = report["review"]
    lines.append(
        f"  review queue: {r['open']} open of {r['items']} items; "
        f"{len(r['missed_suggested_as_themselves'])} of the {len(report['missed'])} missed wait there "
        f"suggested as themselves (one click each); {r['suggestions_naming_someone_else']} suggestions "
        "name someone else than who was there"
    )
    lines.append(f"\nWrongly marked ({len(report['wrongly_marked'])}):")
    for m in report["wrongly_marked"]:
        lines.append(
            f"  {m['student_number']}  {m['student_name']:<28} {m['why']}; "
            f"mark distance {m['distance']:.3f}, {m['sightings']} sightings"
        )
    if report["marks_outside_lesson_session"]:
        lines.append(
            f"\nMarks filed outside the lesson's session ({len(report['marks_outside_lesson_session'])}):"
        )
        for m in report["marks_outside_lesson_session"]:
            lines.append(f"  {m['student_number']} in session {m['session_id']}")
    wrong = report["wrong_name_events"]
    lines.append(f"\nWrong-name events ({len(wrong)}):")
    if wrong:
        lines.append("  frame  time_s  named     distance  tracked  worker  why")
    for w in wrong:
        distance = "-" if w["distance"] is None else f"{w['distance']:.3f}"
        lines.append(
            f"  {w['frame']:>5}  {w['media_s']:>6.1f}  {w['named']:<9} {distance:>8}  "
            f"{'yes' if w['tracked'] else 'no':<7}  {w['worker'] or '-':<6}  {w['why']}"
        )
    c = report["consistency"]
    lines.append(
        f"\nconsistency: {c['marks_in_db']} marks in MySQL, {c['csv_rows']} CSV rows "
        f"({'agree' if c['csv_agrees_with_db'] else 'DISAGREE'}); {c['events_only_on_the_broker']} events "
        f"published but not in MySQL; {c['events_without_box']} events in MySQL the tap did not see"
    )
    if truth.turn:
        t = truth.turn
        lines.append(
            f"turn at seat {t['seat']}: {t['first']} left at {t['first_leaves_s']}s, "
            f"{t['second']} sat at {t['second_arrives_s']}s"
        )
    return "\n".join(lines) + "\n"
