"""The environment contract: every variable read, validated, and named when wrong."""

import pytest

from exportlake.domain.errors import ConfigError
from exportlake.settings import ENV_VARS, Settings, is_loopback, queue_name, topic_name

GOOD = {
    "EXPORTLAKE_GATEWAY_URL": "https://gw.example.com/",
    "EXPORTLAKE_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:exportlake/api-AbCdEf",
    "EXPORTLAKE_BUCKET": "my-lake",
    "EXPORTLAKE_GLUE_DATABASE": "exportlake",
    "EXPORTLAKE_LEDGER_TABLE": "ledger-table",
    "EXPORTLAKE_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:exportlake-events",
    "EXPORTLAKE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/copy-jobs",
}


def test_reads_every_variable_and_defaults_download_hosts() -> None:
    s = Settings.from_env(GOOD)
    assert s.gateway_url == "https://gw.example.com"
    assert s.secret_id.endswith("exportlake/api-AbCdEf")
    assert s.download_hosts == ("*.digitaloceanspaces.com",)
    assert set(s.as_env()) == set(ENV_VARS)
    assert Settings.from_env(s.as_env()) == s


def test_optional_settings_default_validate_and_round_trip() -> None:
    s = Settings.from_env(GOOD)
    assert (s.gateway_max_rps, s.expiry_warning_hours) == (20.0, 24)
    tuned = Settings.from_env({**GOOD, "EXPORTLAKE_GATEWAY_MAX_RPS": "0", "EXPORTLAKE_EXPIRY_WARNING_HOURS": "72"})
    assert (tuned.gateway_max_rps, tuned.expiry_warning_hours) == (0.0, 72)  # 0: no bound
    assert Settings.from_env(tuned.as_env()) == tuned
    for bad in ("-1", "1001", "nan", "fast", "inf"):
        with pytest.raises(ConfigError, match="EXPORTLAKE_GATEWAY_MAX_RPS"):
            Settings.from_env({**GOOD, "EXPORTLAKE_GATEWAY_MAX_RPS": bad})
    with pytest.raises(ConfigError, match="EXPORTLAKE_EXPIRY_WARNING_HOURS"):
        Settings.from_env({**GOOD, "EXPORTLAKE_EXPIRY_WARNING_HOURS": "0"})


def test_secret_may_be_a_name() -> None:
    assert Settings.from_env({**GOOD, "EXPORTLAKE_SECRET_ID": "exportlake/neoday"}).secret_id == "exportlake/neoday"


@pytest.mark.parametrize("name", ENV_VARS[:-1])
def test_missing_variable_is_named(name: str) -> None:
    env = {k: v for k, v in GOOD.items() if k != name}
    with pytest.raises(ConfigError, match=f"{name} is not set"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EXPORTLAKE_GATEWAY_URL", "ftp://gw.example.com"),
        ("EXPORTLAKE_GATEWAY_URL", "http://gw.example.com"),
        ("EXPORTLAKE_BUCKET", "Bad_Bucket"),
        ("EXPORTLAKE_GLUE_DATABASE", "db; DROP"),
        ("EXPORTLAKE_TOPIC_ARN", "not-an-arn"),
        ("EXPORTLAKE_QUEUE_URL", "queue"),
        ("EXPORTLAKE_DOWNLOAD_HOSTS", "evil.com/path"),
    ],
)
def test_bad_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**GOOD, name: value})


def test_plain_http_gateway_only_on_loopback() -> None:
    assert Settings.from_env({**GOOD, "EXPORTLAKE_GATEWAY_URL": "http://127.0.0.1:8080"}).gateway_url.startswith(
        "http://127.0.0.1"
    )


def test_download_hosts_list() -> None:
    s = Settings.from_env({**GOOD, "EXPORTLAKE_DOWNLOAD_HOSTS": " *.Example.com , cdn.example.org"})
    assert s.download_hosts == ("*.example.com", "cdn.example.org")


def test_names_from_url_and_arn() -> None:
    assert queue_name(GOOD["EXPORTLAKE_QUEUE_URL"]) == "copy-jobs"
    assert topic_name(GOOD["EXPORTLAKE_TOPIC_ARN"]) == "exportlake-events"
    assert is_loopback("127.0.0.9") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("10.0.0.1")


def test_loopback_is_an_address_or_localhost_never_a_name_that_starts_with_127() -> None:
    assert not is_loopback("127.evil.example")
    assert not is_loopback("127.x.nyc3.digitaloceanspaces.com")
    with pytest.raises(ConfigError, match="https"):
        Settings.from_env({**GOOD, "EXPORTLAKE_GATEWAY_URL": "http://127.evil.example"})
