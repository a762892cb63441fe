"""How faces are found and named (environment variables of the same names); shared by the
recognizer workers, enrollment and the API."""

from typing import Any, Literal

from pydantic import Field, model_validator

from services.common.settings import BaseServiceSettings
from services.faces.decision import DecisionRule

# Calibrated at school scale on LFW (README, "Choosing the tolerance"): with 300 enrolled from
# one photo each, the fused looks of a track within 0.47 and beating the second-best student by
# 0.08 name 0.9% of strangers and miss 8.9% of genuine tracks (2 photos each: 2.1%); the old
# per-photo 0.55 / 0.05 named 9% of strangers and gave 0.3% of students someone else's name.
DEFAULT_TOLERANCE = 0.47
DEFAULT_MARGIN = 0.08
# With a roster of 30 among 300 enrolled from one photo each: 0.36% of strangers marked (as
# "check") and 1.7% of the class missed, against 0.11% and 8.7% by the strict rule alone.
DEFAULT_ROSTER_TOLERANCE = 0.50
DEFAULT_ROSTER_MARGIN = 0.05
# An enrollment photo is encoded once, so it can afford re-sampling: the mean of 10 jittered
# encodings lies nearer the student's later photos (LFW, 300 enrolled from one photo each:
# 7.3% of genuine tracks missed instead of 8.6%, strangers accepted unchanged at 0.6%; README,
# "Choosing the tolerance"), for 10x that photo's encoding time (~0.8 s with stock dlib).
DEFAULT_ENROLL_JITTERS = 10


class RecognitionSettings(BaseServiceSettings):
    """How faces are found and named; shared by the workers, enrollment and the API."""

    recognizer_tolerance: float = Field(DEFAULT_TOLERANCE, gt=0.0, lt=1.0)
    recognizer_margin: float = Field(DEFAULT_MARGIN, ge=0.0, lt=1.0)
    # auto: YuNet where its wheel runs (x86-64, CPython <= 3.11), else dlib's HOG, said once.
    recognizer_detector: Literal["auto", "yunet", "hog"] = "auto"
    # YuNet scans frames scaled down to this width (half of a 1280-wide frame finds every face
    # HOG finds at full size) and keeps boxes scoring at least RECOGNIZER_YUNET_MIN_SCORE
    # (every real face of the shared clip scores >= 0.80; painted or blurred ones lower).
    recognizer_yunet_max_width: int = Field(640, ge=160, le=4096)
    recognizer_yunet_min_score: float = Field(0.80, gt=0.0, lt=1.0)
    # With HOG: frames wider than this are scaled down for detection (encodings use the full
    # frame). HOG finds faces of ~80 px and more at the detection scale: 1280 finds 80 px faces in
    # a 1280-wide frame (a back row), 640 only 160 px ones; the cost grows with the pixels.
    recognizer_detect_max_width: int = Field(1280, ge=160, le=4096)
    # 1 also finds faces down to ~40 px at the detection scale, for 4x the cost of 0
    # (README, "Speed and accuracy").
    recognizer_detect_upsample: int = Field(0, ge=0, le=2)
    # Re-samples per encoding of a worker's look (each one multiplies the cost of a frame).
    recognizer_encode_jitters: int = Field(1, ge=1, le=100)
    # Re-samples per encoding of an enrollment photo (the API, the enroll command).
    recognizer_enroll_jitters: int = Field(DEFAULT_ENROLL_JITTERS, ge=1, le=100)
    # Faces smaller than this (pixels, shorter side) are not encoded: too few pixels to name anyone.
    recognizer_min_face_px: int = Field(0, ge=0, le=1000)

    # A track is named once it has this many fresh looks (of its last RECOGNIZER_CONFIRM_WINDOW),
    # their fused embedding names a student by the rule above, and no look names anybody else
    # (services/faces/decision.py).
    recognizer_confirm_agree: int = Field(3, ge=1, le=20)
    recognizer_confirm_window: int = Field(4, ge=1, le=50)
    # A name whose looks average farther than this, or whose thinnest margin is under
    # RECOGNIZER_CHECK_MARGIN, is marked "check" for a person to confirm.
    recognizer_check_distance: float = Field(0.42, gt=0.0, lt=1.0)
    recognizer_check_margin: float = Field(0.12, ge=0.0, lt=1.0)
    # In a session with a roster, a track the rule above leaves unknown is marked "check" as a
    # roster student when its fused looks are within this tolerance and this margin (still to
    # everyone enrolled): one of 30 is a smaller question than one of 300 (README, "Choosing
    # the tolerance"). RECOGNIZER_ROSTER_TOLERANCE=0 turns the roster rule off.
    recognizer_roster_tolerance: float = Field(DEFAULT_ROSTER_TOLERANCE, ge=0.0, lt=1.0)
    recognizer_roster_margin: float = Field(DEFAULT_ROSTER_MARGIN, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _window_holds_the_agreement(self) -> "RecognitionSettings":
        if self.recognizer_confirm_agree > self.recognizer_confirm_window:
            raise ValueError(
                f"RECOGNIZER_CONFIRM_AGREE ({self.recognizer_confirm_agree}) cannot exceed "
                f"RECOGNIZER_CONFIRM_WINDOW ({self.recognizer_confirm_window})"
            )
        return self

    def decision_rule(self) -> DecisionRule:
        return DecisionRule(
            agree=self.recognizer_confirm_agree,
            window=self.recognizer_confirm_window,
            check_distance=self.recognizer_check_distance,
            check_margin=self.recognizer_check_margin,
            roster_tolerance=self.recognizer_roster_tolerance or None,
            roster_margin=self.recognizer_roster_margin,
        )

    def analyzer_options(self) -> dict[str, Any]:
        return {
            "detector": self.recognizer_detector,
            "yunet_max_width": self.recognizer_yunet_max_width,
            "yunet_min_score": self.recognizer_yunet_min_score,
            "detect_max_width": self.recognizer_detect_max_width,
            "detect_upsample": self.recognizer_detect_upsample,
            "encode_jitters": self.recognizer_encode_jitters,
            "min_face_px": self.recognizer_min_face_px,
        }
