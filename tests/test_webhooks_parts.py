"""Webhooks without a server: the configuration file and its errors, signatures (the docs'
recipe against Standard Webhooks' own test vector), back-off, and progress in both stores."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from webhook_receiver import SECRET, docs_verifier

from entitle.cli import main
from entitle.server.store import NewAlert, StoredAlert, open_store
from entitle.server.webhooks.config import (
    Retry,
    WebhookConfigError,
    key_of,
    load_webhooks,
)
from entitle.server.webhooks.delivery import alert_body, backoff_delay
from entitle.server.webhooks.signing import signature_header

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"
BROKEN = sorted((FIXTURES / "broken").glob("*.yaml"))
AT = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
verify_webhook = docs_verifier()


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch):
    monkeypatch.setenv("ENTITLE_TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("ENTITLE_TEST_UNSET_SECRET", raising=False)


# --- configuration ---------------------------------------------------------------------------


def test_a_valid_file_reads_every_key():
    config = load_webhooks(FIXTURES / "valid.yaml")
    assert config.poll == 1.0
    zendesk, ops = config.endpoints
    assert (zendesk.id, zendesk.url, zendesk.timeout) == (
        "zendesk-bridge", "https://hooks.example.com/entitle", 5.0
    )
    assert zendesk.kinds == ("CONTRACT_EXPIRING", "QUOTA_EXHAUSTED")  # any case, any prefix
    assert (zendesk.customer_id, zendesk.contract_id) == ("acme", "acme-premium")
    assert zendesk.retry == Retry(max_attempts=5, backoff=2.0, max_backoff=60.0)
    assert zendesk.secret.read() == (key_of(SECRET, "test"),)
    assert zendesk.start == "latest" and zendesk.source.endswith("valid.yaml:8")
    # per-endpoint retry keys override the file's defaults one by one
    assert ops.retry == Retry(max_attempts=20, backoff=2.0, max_backoff=60.0)
    assert ops.start == "oldest" and ops.kinds == () and ops.timeout == 10.0
    assert ops.secret.file == str(FIXTURES / "ops.secret")
    assert len(ops.secret.read()) == 2  # two lines: the current and the next secret


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_each_broken_file_is_refused_at_the_cause(path):
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    expect = expect.replace("{fixtures}", str(FIXTURES))
    with pytest.raises(WebhookConfigError) as info:
        load_webhooks(path)
    first = info.value.diagnostics[0]
    assert f"{first.line}:{first.col}: {first.message}" == expect
    assert len(info.value.diagnostics) == 1, info.value.diagnostics  # one mistake, one error


def test_several_problems_are_one_line_naming_the_first(tmp_path):
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "endpoints:\n  - id: a b\n    url: https://h.example\n    secret_env: NOPE_UNSET_X\n"
        "    timeout: fast\n"
    )
    with pytest.raises(WebhookConfigError) as info:
        load_webhooks(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.endswith("endpoints[0].id: 'a b': use at most 64 letters, digits, '-', '_' "
                         "or '.' (and 2 more)")


def test_serve_refuses_an_invalid_file_with_exit_2_and_one_line(tmp_path, capsys):
    code = main(["serve", "--webhooks", str(FIXTURES / "broken" / "bad-url.yaml"),
                 "--listen", "127.0.0.1:0", "--store", f"sqlite:///{tmp_path}/e.db"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("entitle serve: --webhooks: ") and "bad-url.yaml:4:10: " in err
    assert main(["serve", "--webhooks", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml:1:1: cannot read file" in capsys.readouterr().err


def test_a_yaml_syntax_error_is_located_in_the_file():
    with pytest.raises(WebhookConfigError) as info:
        load_webhooks(FIXTURES / "yaml-syntax.yaml")
    (problem,) = info.value.diagnostics
    assert problem.path.endswith("yaml-syntax.yaml") and problem.line >= 3
    assert "YAML" in problem.message or "quote" in problem.message


def test_a_secret_must_be_long_enough_and_whsec_must_be_base64():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        key_of("whsec_" + base64.b64encode(b"short").decode(), "x")
    with pytest.raises(ValueError, match="base64"):
        key_of("whsec_not*base64", "x")
    assert key_of("a-plain-secret-of-24-chars", "x") == b"a-plain-secret-of-24-chars"


# --- signatures ------------------------------------------------------------------------------


def test_signatures_match_the_standard_webhooks_test_vector():
    key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "vector")
    body = b'{"test": 2432232314}'
    header = signature_header([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert header == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": "1614265330",
               "Webhook-Signature": header}
    assert verify_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body,
                          now=1614265330)


def test_the_docs_example_delivery_verifies_with_the_docs_recipe():
    text = (FIXTURES.parent.parent.parent / "docs" / "webhooks.md").read_text()
    example = text.split("```http\n", 1)[1].split("\n```", 1)[0]
    head, body = example.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    assert int(headers["Content-Length"]) == len(body.encode())
    stamp = int(headers["webhook-timestamp"])
    assert verify_webhook(SECRET, headers, body.encode(), now=stamp)
    assert json.loads(body)["alert"]["cursor"] == headers["webhook-id"]
    # and it is what entitle sends for that alert today (the page follows the code)
    alert = StoredAlert(42, "key", "USAGE_THRESHOLD", "globex-mail-pack", "globex",
                        "incident-pack-10", AT, AT, 80, "2026", {
                            "used": 8.0, "limit": 10.0, "unit": "incidents",
                            "period_start": "2026-01-01T05:00:00Z",
                            "recipients": ["americas-desk@support.example"],
                            "message": "globex: contract globex-mail-pack has used 80% of 10 "
                                       "incidents (pack) (8/10)"})
    assert alert_body(alert) == body.encode()


def test_the_docs_recipe_refuses_tampering_replay_and_wrong_secrets():
    keys = load_webhooks(FIXTURES / "valid.yaml").endpoints[1].secret.read()
    body, stamp = b'{"type":"alert","alert":{"cursor":"7"}}', 1_781_517_600
    headers = {"webhook-id": "7", "webhook-timestamp": str(stamp),
               "webhook-signature": signature_header(keys, "7", stamp, body)}
    current, following = (FIXTURES / "ops.secret").read_text().splitlines()[1:]
    for secret in (current, following):  # during a rotation either secret verifies
        assert verify_webhook(secret, headers, body, now=stamp + 10)
    assert not verify_webhook(SECRET.replace("MD", "MT"), headers, body, now=stamp)
    assert not verify_webhook(current, headers, body + b" ", now=stamp)
    assert not verify_webhook(current, {**headers, "webhook-id": "8"}, body, now=stamp)
    assert not verify_webhook(current, {**headers, "webhook-timestamp": str(stamp + 1)}, body,
                              now=stamp)
    assert not verify_webhook(current, headers, body, now=stamp + 301)  # replayed later
    assert not verify_webhook(current, {}, body, now=stamp)


# --- back-off ----------------------------------------------------------------------------------


@given(
    attempts=st.integers(1, 500),
    backoff=st.floats(0.01, 100),
    factor=st.floats(1, 1e4),
    rand=st.floats(0, 1),
    retry_after=st.none() | st.floats(0, 1e6),
)
def test_back_off_doubles_jittered_within_the_upper_half_and_never_passes_the_cap(
    attempts, backoff, factor, rand, retry_after
):
    retry = Retry(max_attempts=10, backoff=backoff, max_backoff=backoff * factor)
    bound = min(retry.max_backoff, backoff * 2.0 ** (attempts - 1))
    wait = backoff_delay(attempts, retry, lambda: rand, retry_after)
    assert wait <= retry.max_backoff * (1 + 1e-12)
    if retry_after is None or retry_after <= wait:
        assert bound / 2 * (1 - 1e-12) <= backoff_delay(attempts, retry, lambda: rand) <= bound
    else:
        assert wait == min(retry_after, retry.max_backoff)
    # the bound never shrinks as failures add up
    assert backoff_delay(attempts + 1, retry, lambda: 1.0) >= backoff_delay(
        attempts, retry, lambda: 1.0)


# --- progress in the store ---------------------------------------------------------------------


def alert(n: int) -> NewAlert:
    return NewAlert(f"k{n}", "USAGE_THRESHOLD", "acme-premium", "acme", "premium", AT, 50)


def test_progress_moves_only_from_where_it_is(store_url):
    store = open_store(store_url)
    try:
        cursors = store.append_alerts([alert(n) for n in range(4)], AT)
        p = store.webhook_progress("ops", start_cursor=cursors[0], at=AT)
        assert (p.cursor, p.attempts, p.delivered, p.next_attempt_at) == (cursors[0], 0, 0, None)
        # created once: a second worker asking with another start cursor gets the same row
        assert store.webhook_progress("ops", start_cursor=0, at=AT).cursor == cursors[0]
        assert store.webhook_advance("ops", cursors[0], cursors[1], delivered=True, at=AT)
        # a stale holder (lease ran out) cannot move it again, nor back
        assert not store.webhook_advance("ops", cursors[0], cursors[1], delivered=True, at=AT)
        assert not store.webhook_failed("ops", cursors[0], cursors[1], attempts=1, error="x",
                                        at=AT, next_attempt_at=AT)
        later = AT + timedelta(seconds=30)
        assert store.webhook_failed("ops", cursors[1], cursors[2], attempts=2,
                                    error="HTTP 503: busy", at=AT, next_attempt_at=later)
        p = store.webhook_progress_of(["ops", "never-started"])["ops"]
        assert (p.attempt_cursor, p.attempts, p.next_attempt_at, p.last_error) == (
            cursors[2], 2, later, "HTTP 503: busy")
        assert (p.delivered, p.last_delivered_at, p.last_error_at) == (1, AT, AT)
        assert not store.webhook_dead_letter("ops", cursors[0], cursors[2], attempts=3,
                                             error="x", body="{}", at=AT)
        assert store.webhook_dead_letter("ops", cursors[1], cursors[2], attempts=3,
                                         error="HTTP 503: busy", body='{"a":1}', at=later)
        p = store.webhook_progress_of(["ops"])["ops"]
        assert (p.cursor, p.attempts, p.dead_letters, p.next_attempt_at) == (
            cursors[2], 0, 1, None)
        (dead,) = store.webhook_dead_letters("ops")
        assert (dead.cursor, dead.attempts, dead.last_error, dead.body, dead.dead_at) == (
            cursors[2], 3, "HTTP 503: busy", '{"a":1}', later)
        assert store.webhook_dead_letters("other") == []
    finally:
        store.close()


def test_progress_survives_reopening_the_store(store_url):
    store = open_store(store_url)
    store.webhook_progress("ops", start_cursor=5, at=AT)
    store.webhook_advance("ops", 5, 9, delivered=False, at=AT)
    store.close()
    store = open_store(store_url)
    try:
        p = store.webhook_progress("ops", start_cursor=0, at=AT)
        assert (p.cursor, p.delivered) == (9, 0)  # skipped by the filter: not a delivery
    finally:
        store.close()

