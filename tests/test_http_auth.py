"""The HTTP face's tokens (Bearer, or Basic with the token as password), roles and TLS: the
same rules as the gRPC port, over real connections."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest
from test_security import pki, tls_config  # noqa: F401  (the module's PKI fixture)
from test_server_harness import in_process, make_bundle

from entitle.server.faces.http.auth import token_of

PREFIX = "/entitle.v1.EntitlementService/"
ADMIN = "adm-http-6c2e9a4f1b7d"
CHECKER = "chk-http-0d5f8b3a2e6c"
VIEWER = "vwr-http-9a1c4e7b2f5d"
JSON = {"content-type": "application/json"}


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"{ADMIN} admin\n{CHECKER} checker\n{VIEWER} viewer\n")
    return path


@pytest.fixture
def client(tmp_path, tokens_file):
    bundle = make_bundle(tmp_path)
    store = f"sqlite:///{tmp_path / 'e.db'}"
    with in_process(bundle, store, http=True, config={"tokens_file": str(tokens_file)}) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=10) as c:
        yield c


def ping(client, headers=None, **kwargs):
    return client.post(PREFIX + "Ping", content=b"{}", headers=headers or JSON, **kwargs)


def test_no_token_is_401_with_both_schemes_offered(client):
    reply = ping(client)
    assert reply.status_code == 401 and reply.json()["code"] == "unauthenticated"
    assert "Bearer" in reply.json()["message"] and "Basic" in reply.json()["message"]
    challenge = reply.headers["www-authenticate"]
    assert 'Bearer realm="entitle"' in challenge and 'Basic realm="entitle"' in challenge
    assert reply.headers["x-request-id"]


def test_bearer_and_basic_tokens_are_accepted(client):
    assert ping(client, headers={**JSON, "authorization": f"Bearer {CHECKER}"}).status_code == 200
    assert ping(client, auth=("zendesk", CHECKER)).status_code == 200
    assert ping(client, auth=("", ADMIN)).status_code == 200  # any user name, even none


def test_unknown_tokens_and_bad_basic_are_401(client):
    for auth in (("user", "wrong"), ("user", "")):
        reply = ping(client, auth=auth)
        assert reply.status_code == 401 and "www-authenticate" in reply.headers
    reply = ping(client, headers={**JSON, "authorization": "Basic !!!notbase64"})
    assert reply.status_code == 401
    reply = ping(client, headers={**JSON, "authorization": "Bearer nope"})
    assert reply.status_code == 401 and reply.json()["message"] == "unknown bearer token"


def test_a_role_too_low_is_403_naming_the_roles(client):
    reply = client.post(PREFIX + "Reload", content=b"{}", headers=JSON, auth=("u", CHECKER))
    assert reply.status_code == 403 and reply.json()["code"] == "permission_denied"
    assert reply.json()["message"] == "Reload needs the admin role; this token has the checker role"
    assert "www-authenticate" not in reply.headers
    viewer = ping(client, headers={**JSON, "authorization": f"Bearer {VIEWER}"})
    assert viewer.status_code == 403
    admin = client.post(PREFIX + "Reload", content=b"{}", headers=JSON, auth=("u", ADMIN))
    assert admin.status_code == 200 and json.loads(admin.content)["changed"] is False


def test_the_alert_stream_needs_a_token_too(client):
    assert client.get("/v1/alerts/stream").status_code == 401
    assert client.get("/v1/alerts/stream", auth=("u", VIEWER)).status_code == 403


def test_health_is_open(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_token_of_header_forms():
    import base64

    basic = "Basic " + base64.b64encode(b"me:s3cret:with:colons").decode()
    assert token_of(basic) == "s3cret:with:colons"
    assert token_of("bearer abc") == "abc" and token_of("Token abc") is None
    assert token_of(None) is None and token_of("Basic " + base64.b64encode(b"nopass").decode()) \
        is None


def test_tls_and_mutual_tls_as_on_grpc(tmp_path, pki):  # noqa: F811
    bundle = make_bundle(tmp_path)
    store = f"sqlite:///{tmp_path / 'e.db'}"
    config = tls_config(pki, client_ca=str(pki / "ca.pem"))
    with in_process(bundle, store, http=True, config=config) as srv:
        url = f"https://localhost:{srv.http.port}{PREFIX}Ping"
        trust = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        trust.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        assert httpx.post(url, content=b"{}", headers=JSON, verify=trust).status_code == 200
        stranger = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        stranger.load_cert_chain(str(pki / "stranger.pem"), str(pki / "stranger.key"))
        with pytest.raises(httpx.TransportError):
            httpx.post(url, content=b"{}", headers=JSON, verify=stranger)
        anonymous = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises(httpx.TransportError):
            httpx.post(url, content=b"{}", headers=JSON, verify=anonymous)
        with pytest.raises(httpx.TransportError):  # plaintext to a TLS port
            httpx.post(f"http://localhost:{srv.http.port}{PREFIX}Ping", content=b"{}",
                       headers=JSON)
