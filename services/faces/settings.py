"""How faces are found and named (environment variables of the same names); shared by the
recognizer workers, enrollment and the API."""

from pydantic import Field, model_validator

from services.common.settings import BaseServiceSettings
from services.faces.decision import DecisionRule

# Chosen from measured distances (README, "Choosing the tolerance"): through this pipeline the
# farthest two photos of one person in ../shared/faces are 0.545 apart, while two different
# people are at least 0.617 apart in photos and 0.573 in the shared clip; the library's usual
# 0.6 names strangers (docs/performance-notes.md). The margin and the recorder's vote add safety.
DEFAULT_TOLERANCE = 0.55
DEFAULT_MARGIN = 0.05


class RecognitionSettings(BaseServiceSettings):
    """How faces are found and named; shared by the workers, enrollment and the API."""

    recognizer_tolerance: float = Field(DEFAULT_TOLERANCE, gt=0.0, lt=1.0)
    recognizer_margin: float = Field(DEFAULT_MARGIN, ge=0.0, lt=1.0)
    # Frames wider than this are scaled down for detection (encodings use the full frame).
    # HOG finds faces of ~80 px and more at the detection scale: 1280 finds 80 px faces in
    # a 1280-wide frame (a back row), 640 only 160 px ones; the cost grows with the pixels.
    recognizer_detect_max_width: int = Field(1280, ge=160, le=4096)
    # 1 also finds faces down to ~40 px at the detection scale, for 4x the cost of 0
    # (README, "Speed and accuracy").
    recognizer_detect_upsample: int = Field(0, ge=0, le=2)
    recognizer_encode_jitters: int = Field(1, ge=1, le=100)
    # Faces smaller than this (pixels, shorter side) are not encoded: too few pixels to name anyone.
    recognizer_min_face_px: int = Field(0, ge=0, le=1000)

    # A track is named when this many of its last RECOGNIZER_CONFIRM_WINDOW fresh encodings name
    # the same student by the rule above, and none names anybody else (services/faces/decision.py).
    recognizer_confirm_agree: int = Field(2, ge=1, le=20)
    recognizer_confirm_window: int = Field(4, ge=1, le=50)
    # A name whose agreeing encodings average farther than this, or whose thinnest margin is
    # under RECOGNIZER_CHECK_MARGIN, is marked "check" for a person to confirm.
    recognizer_check_distance: float = Field(0.50, gt=0.0, lt=1.0)
    recognizer_check_margin: float = Field(0.08, ge=0.0, lt=1.0)

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
        )

    def analyzer_options(self) -> dict[str, int]:
        return {
            "detect_max_width": self.recognizer_detect_max_width,
            "detect_upsample": self.recognizer_detect_upsample,
            "encode_jitters": self.recognizer_encode_jitters,
            "min_face_px": self.recognizer_min_face_px,
        }
