"""plugins/module_utils/rancher.py against the Rancher API fixture, over real HTTPS on 127.0.0.1.

The fixture (molecule/rancher/fixtures/rancher_fixture_server.py) is the same stand-in the
Molecule scenario runs as the Rancher image. What it does and does not prove: docs/rancher.md.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible_runs import ROOT, run_task

BOOTSTRAP = "bootstrap-password-1"
ADMIN = "admin-password-long-1"


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


rancher = load("rancher_module_utils", ROOT / "plugins" / "module_utils" / "rancher.py")
fixture_server = load(
    "rancher_fixture_server", ROOT / "molecule" / "rancher" / "fixtures" / "rancher_fixture_server.py"
)


def start(data_dir: Path, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": 0,
        "https_port": 0,
        "bootstrap_password": BOOTSTRAP,
        "version": "v2.13.3",
        "ssl_dir": data_dir / "no-own-certificate",
        "active_after": 2,
    }
    options.update(kwargs)
    return fixture_server.Fixture(data_dir, **options).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    running = start(tmp_path / "data")
    yield running
    running.stop()


def client(server: Any, **kwargs: Any) -> Any:
    return rancher.RancherClient(f"https://127.0.0.1:{server.https_port}", validate_certs=False, **kwargs)


def logged_in(server: Any, **kwargs: Any) -> Any:
    api = client(server, **kwargs)
    token = api.login("admin", BOOTSTRAP)
    assert token is not None
    api.use_token(token["token"])
    api.change_password(BOOTSTRAP, ADMIN)
    return api


def test_ping_answers_pong_on_http_and_https(server: Any) -> None:
    assert client(server).request("GET", "/ping", auth=False, raw=True) == "pong"
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/ping", timeout=5) as resp:
        assert resp.read() == b"pong"


def test_login_returns_a_rancher_shaped_token_with_the_ttl_asked_for(server: Any) -> None:
    token = client(server).login("admin", BOOTSTRAP, ttl_ms=600000)
    assert token is not None
    assert re.fullmatch(r"token-[a-z0-9]{5}:[a-z0-9]{54}", token["token"])
    assert token["name"] == token["token"].split(":")[0]
    assert token["ttl"] == 600000


def test_wrong_password_is_none_and_other_calls_need_a_token(server: Any) -> None:
    api = client(server)
    assert api.login("admin", "not-the-password") is None
    with pytest.raises(rancher.RancherError) as err:
        api.get_setting("server-url")
    assert err.value.status == 401


def test_password_rule_and_bootstrap_password_stops_working(server: Any) -> None:
    api = client(server)
    token = api.login("admin", BOOTSTRAP)
    api.use_token(token["token"])
    with pytest.raises(ValueError, match="at least 12"):
        api.change_password(BOOTSTRAP, "short-11chr")
    # The server enforces the rule too, with Rancher's error shape.
    with pytest.raises(rancher.RancherError) as err:
        api.request(
            "POST", "/v3/users", {"currentPassword": BOOTSTRAP, "newPassword": "x" * 11}, {"action": "changepassword"}
        )
    assert err.value.status == 422
    assert "at least 12 characters" in err.value.body["message"]
    assert err.value.body["type"] == "error"
    api.change_password(BOOTSTRAP, ADMIN)
    assert api.login("admin", BOOTSTRAP) is None
    assert api.login("admin", ADMIN) is not None


def test_settings_change_only_when_different(server: Any) -> None:
    api = logged_in(server)
    assert api.ensure_setting("server-url", "https://rancher.example:8443") is True
    assert api.ensure_setting("server-url", "https://rancher.example:8443") is False
    assert api.get_setting("server-url") == "https://rancher.example:8443"
    assert api.ensure_setting("telemetry-opt", "out") is True
    with pytest.raises(rancher.RancherError) as err:
        api.ensure_setting("server-url", "http://plain.example")
    assert err.value.status == 422


def test_cluster_is_found_by_name_not_created_twice(server: Any) -> None:
    api = logged_in(server)
    wanted = {rancher.VERSION_MANAGEMENT_ANNOTATION: "false"}
    created, changed = api.ensure_cluster("prompt", annotations=wanted)
    assert changed is True
    assert re.fullmatch(r"c-[a-z0-9]{5}", created["id"])
    again, changed = api.ensure_cluster("prompt", annotations=wanted)
    assert (again["id"], changed) == (created["id"], False)
    with pytest.raises(rancher.RancherError) as err:
        api.request("POST", "/v3/clusters", {"type": "cluster", "name": "prompt"})
    assert (err.value.status, err.value.code) == (422, "NotUnique")


def test_cluster_created_concurrently_is_adopted_after_422(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = logged_in(server)
    first, _ = api.ensure_cluster("prompt")
    lookups = iter([None])
    real_find = api.find_cluster
    monkeypatch.setattr(api, "find_cluster", lambda name: next(lookups, real_find(name)))
    adopted, changed = api.ensure_cluster("prompt")
    assert adopted["id"] == first["id"]
    assert changed is False


def test_version_management_annotation_is_set_and_checked(server: Any) -> None:
    api = logged_in(server)
    cluster, _ = api.ensure_cluster("prompt")
    # Without our annotation Rancher's webhook fills in system-default.
    assert cluster["annotations"][rancher.VERSION_MANAGEMENT_ANNOTATION] == "system-default"
    cluster, changed = api.ensure_cluster("prompt", annotations={rancher.VERSION_MANAGEMENT_ANNOTATION: "false"})
    assert changed is True
    assert api.get_cluster(cluster["id"])["annotations"][rancher.VERSION_MANAGEMENT_ANNOTATION] == "false"
    with pytest.raises(rancher.RancherError) as err:
        api.ensure_cluster("prompt", annotations={rancher.VERSION_MANAGEMENT_ANNOTATION: "off"})
    assert err.value.status == 400


def test_registration_manifest_and_cluster_turns_active(server: Any) -> None:
    api = logged_in(server)
    api.ensure_setting("server-url", f"https://127.0.0.1:{server.https_port}")
    cluster, _ = api.ensure_cluster("prompt")
    with pytest.raises(rancher.RancherError) as err:
        api.request("GET", f"/v3/clusterregistrationtokens/{cluster['id']}:default-token")
    assert err.value.status == 404  # absent until someone asks for one
    token, changed = api.ensure_registration_token(cluster["id"])
    assert changed is True
    assert token["manifestUrl"].startswith(f"https://127.0.0.1:{server.https_port}/v3/import/")
    again, changed = api.ensure_registration_token(cluster["id"])
    assert (again["manifestUrl"], changed) == (token["manifestUrl"], False)
    manifest = api.fetch_manifest(token["manifestUrl"])
    assert "kind: Deployment" in manifest
    assert f'value: "{token["token"]}"' in manifest

    assert api.get_cluster(cluster["id"])["state"] == "pending"
    body = json.dumps({"token": token["token"]}).encode()
    api.request("POST", "/fixture/agent/connect", json.loads(body), auth=False)
    states = [api.get_cluster(cluster["id"])["state"] for _ in range(3)]
    assert states == ["waiting", "active", "active"]


def test_project_and_bindings_are_added_once(server: Any) -> None:
    api = logged_in(server)
    cluster, _ = api.ensure_cluster("prompt")
    project, changed = api.ensure_project(cluster["id"], "prompt-services")
    assert changed is True
    assert project["id"].startswith(cluster["id"] + ":p-")
    assert api.ensure_project(cluster["id"], "prompt-services") == (project, False)
    group = "local://g-operators"
    assert api.ensure_project_binding(project["id"], "project-owner", group_principal=group) is True
    assert api.ensure_project_binding(project["id"], "project-owner", group_principal=group) is False
    with pytest.raises(ValueError, match="exactly one"):
        api.ensure_project_binding(project["id"], "project-member")


def test_dry_run_reads_but_never_writes(server: Any) -> None:
    api = logged_in(server)
    dry = client(server, token=api.token, dry_run=True)
    assert dry.ensure_setting("telemetry-opt", "out") is True
    assert api.get_setting("telemetry-opt") == "prompt"
    _, changed = dry.ensure_cluster("prompt")
    assert changed is True
    assert api.find_cluster("prompt") is None


def test_logout_invalidates_the_token(server: Any) -> None:
    api = logged_in(server)
    token = api.login("admin", ADMIN)
    assert api.logout(token["token"]) is True
    assert api.logout(token["token"]) is False
    with pytest.raises(rancher.RancherError) as err:
        client(server, token=token["token"]).get_setting("server-url")
    assert err.value.status == 401


def test_certificate_is_checked_when_asked(server: Any, tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{server.https_port}"
    with pytest.raises(rancher.RancherError) as err:
        rancher.RancherClient(url).request("GET", "/ping", auth=False, raw=True)
    assert err.value.status == 0
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
    ca = tmp_path / "data" / "fixture-tls" / "cert.pem"
    assert rancher.RancherClient(url, ca_path=str(ca)).request("GET", "/ping", auth=False, raw=True) == "pong"


def test_state_survives_a_restart_on_the_same_data(tmp_path: Path) -> None:
    first = start(tmp_path / "data")
    try:
        logged_in(first)
    finally:
        first.stop()
    second = start(tmp_path / "data", bootstrap_password="another-bootstrap-pw", version="v2.13.4")
    try:
        api = client(second)
        assert api.login("admin", ADMIN) is not None
        assert api.login("admin", "another-bootstrap-pw") is None
        api.use_token(api.login("admin", ADMIN)["token"])
        assert api.get_setting("server-version") == "v2.13.4"
    finally:
        second.stop()


def test_no_cacerts_leaves_the_cacerts_setting_empty(tmp_path: Path) -> None:
    running = start(tmp_path / "data", no_cacerts=True)
    try:
        assert client(running).request("GET", "/v3/settings/cacerts", auth=False)["value"] == ""
    finally:
        running.stop()


def run_bootstrap(server: Any, tmp_path: Path, *flags: str, **options: Any) -> dict[str, Any]:
    """The rancher_bootstrap module through ansible-playbook on localhost; the task's result."""
    args = {
        "url": f"https://127.0.0.1:{server.https_port}",
        "validate_certs": False,
        "password": ADMIN,
        "bootstrap_password": BOOTSTRAP,
        "server_url": "https://rancher.example.test",
        **options,
    }
    return run_task(tmp_path, {"name": "Bootstrap", "promptops.cluster.rancher_bootstrap": args}, *flags)


def live_tokens(server: Any) -> list[str]:
    """The role's tokens the fixture still holds (its /fixture/state, as Molecule's verify reads it)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{server.https_port}/fixture/state"
    with urllib.request.urlopen(url, context=context, timeout=10) as resp:
        state = json.loads(resp.read())
    return [d for d in state["live_token_descriptions"] if d.startswith("promptops")]


@pytest.mark.parametrize("check_mode", [False, True])
def test_bootstrap_without_keep_token_leaves_no_session(server: Any, tmp_path: Path, check_mode: bool) -> None:
    flags = ["--check"] if check_mode else []
    if check_mode:
        logged_in(server)  # check mode logs in for real only on a server that was bootstrapped

    result = run_bootstrap(server, tmp_path, *flags, keep_token=False)

    assert result.get("failed") is not True, result
    assert result["token"] == ""
    assert result["server_version"] == "v2.13.3"
    assert live_tokens(server) == []


def test_bootstrap_keeps_its_session_by_default(server: Any, tmp_path: Path) -> None:
    """The contrast: the token is returned and alive until finish.yml deletes it."""
    result = run_bootstrap(server, tmp_path)
    assert result["token"].startswith(result["token_name"] + ":")
    assert live_tokens(server) == ["promptops.cluster rancher role"]


def test_check_mode_on_a_new_server_leaves_no_session(server: Any, tmp_path: Path) -> None:
    """A new server can only be read by logging in with the bootstrap password, for real."""
    result = run_bootstrap(server, tmp_path, "--check")
    assert result["changed"] is True
    assert result["password_changed"] is True
    assert live_tokens(server) == []
    assert client(server).login("admin", BOOTSTRAP) is not None  # and nothing was changed


@pytest.mark.parametrize("keep_token", [True, False])
def test_a_failure_after_login_leaves_no_session(server: Any, tmp_path: Path, keep_token: bool) -> None:
    logged_in(server)
    result = run_bootstrap(server, tmp_path, keep_token=keep_token, settings={"no-such-setting": "x"})
    assert result.get("failed") is True
    assert live_tokens(server) == []
