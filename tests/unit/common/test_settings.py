import pytest

from services.capture.settings import CaptureSettings
from services.common.amqp.connection import connection_parameters
from services.common.settings import BrokerSettings, load_settings, redact
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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Issue 9, finding 12: only user:pass@ was masked; the query kept ?pwd=... in logs and GET /cameras.
        ("rtsp://cam.local/live?pwd=s3cret&channel=1", "rtsp://cam.local/live?pwd=***&channel=1"),
        ("http://cam/v.cgi?user=admin&PASSWORD=s3cret", "http://cam/v.cgi?user=admin&PASSWORD=***"),
        ("http://cam/s.jpg?Passwd=s3cret&res=hd", "http://cam/s.jpg?Passwd=***&res=hd"),
        ("rtsp://cam/live?pass=s3cret", "rtsp://cam/live?pass=***"),
        ("https://cam/hls.m3u8?token=s3cret", "https://cam/hls.m3u8?token=***"),
        ("https://cam/m?api_key=s3cret;auth=s3cret", "https://cam/m?api_key=***;auth=***"),
        ("https://cam/m?KEY=s3cret&X-Amz-Signature=s3cret", "https://cam/m?KEY=***&X-Amz-Signature=***"),
        ("http://cam/m?P%61ss=s3cret", "http://cam/m?P%61ss=***"),  # percent-encoded name
        ("http://cam/m#token=s3cret", "http://cam/m#token=***"),
        ("rtsp://cam/user=admin&password=s3cret/stream", "rtsp://cam/user=admin&password=***/stream"),
        ("http://cam/m?x=1&password=a/b", "http://cam/m?x=1&password=***"),
        # Both at once, and the userinfo still masked.
        ("rtsp://admin:hunter2@cam/s?pwd=s3cret", "rtsp://admin:***@cam/s?pwd=***"),
        ("rtsp://admin:p@ss@cam/s", "rtsp://admin:***@cam/s"),
        # A password with an unescaped # / or ? (urlsplit would end the host early and show it).
        ("rtsp://admin:abc#123@cam/stream", "rtsp://admin:***@cam/stream"),
        ("rtsp://admin:a/b?c@cam/s?x=1", "rtsp://admin:***@cam/s?x=1"),
    ],
)
def test_redact_masks_every_secret_part_of_a_url(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url) and "hunter2" not in redact(url)


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "/media/lesson.mp4",
        "C:\\videos\\a.mp4",
        "rtsp://cam.local/stream?channel=1&subtype=0",
        "rtsp://cam.local/stream?",
        "http://cam/m?pass=",  # nothing to hide
        "rtsp://cam/s?email=a@b.example",
    ],
)
def test_redact_leaves_what_holds_no_secret_exactly_as_it_was(value: str) -> None:
    assert redact(value) == value


CLUSTER = "amqp://recorder:s3cret@rabbit-1:5672/%2F,amqp://recorder:s3cret@rabbit-2:5672/%2F, amqp://recorder:s3cret@rabbit-3/%2F"


def test_amqp_url_may_name_every_node_of_a_cluster_tried_in_turn() -> None:
    settings = BrokerSettings(amqp_url=CLUSTER)
    assert settings.amqp_urls == [url.strip() for url in CLUSTER.split(",")]
    params = connection_parameters(settings, "recorder")
    assert [(p.host, p.port) for p in params] == [("rabbit-1", 5672), ("rabbit-2", 5672), ("rabbit-3", 5672)]
    assert all(
        p.connection_attempts == 1 and p.client_properties == {"connection_name": "recorder"} for p in params
    )
    assert redact(CLUSTER) == CLUSTER.replace("s3cret", "***").replace(", ", ",")
    with pytest.raises(ValueError, match="every URL must start with amqp://"):
        BrokerSettings(amqp_url="amqp://u:p@rabbit-1/%2F,http://rabbit-2/")
