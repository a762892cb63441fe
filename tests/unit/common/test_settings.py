import pytest

from services.capture.settings import CaptureSettings
from services.common.settings import load_settings, redact
from services.recorder.settings import RecorderSettings


def test_defaults_point_at_the_local_broker_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AMQP_URL", "DATABASE_URL", "TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(RecorderSettings, [])
    assert settings.amqp_url.startswith("amqp://guest:guest@127.0.0.1:5672")
    assert settings.database_url.startswith("mysql+pymysql://root@127.0.0.1:3306/")
    assert settings.timezone == "UTC"


def test_a_bad_value_exits_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECORDER_BATCH_SIZE", "lots")
    with pytest.raises(SystemExit) as exit_info:
        load_settings(RecorderSettings, [])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "invalid setting RECORDER_BATCH_SIZE='lots': Input should be a valid integer, unable to parse "
        "string as an integer"
    ]


def test_an_unknown_time_zone_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    with pytest.raises(SystemExit):
        load_settings(RecorderSettings, [])
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_a_missing_video_file_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAPTURE_SOURCE", "/nowhere/clip.mp4")
    with pytest.raises(SystemExit):
        load_settings(CaptureSettings, [])
    assert "no such video file or folder: /nowhere/clip.mp4" in capsys.readouterr().err


def test_check_config_prints_settings_without_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://school:s3cret@broker:5672/%2F")
    with pytest.raises(SystemExit) as exit_info:
        load_settings(RecorderSettings, ["--check-config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "AMQP_URL=amqp://school:***@broker:5672/%2F" in out
    assert "s3cret" not in out
    assert "RECORDER_CSV_PATH=" in out


def test_redact_leaves_urls_without_password_alone() -> None:
    assert redact("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    assert redact("rtsp://admin:pw@cam.local/stream") == "rtsp://admin:***@cam.local/stream"
