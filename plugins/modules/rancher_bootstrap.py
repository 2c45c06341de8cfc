#!/usr/bin/python
# Copyright: Prompt Cluster maintainers
# Apache-2.0 (see galaxy.yml)
"""Bootstrap a Rancher server through its API: admin password, settings, a session token."""

from __future__ import annotations

import contextlib

DOCUMENTATION = r"""
---
module: rancher_bootstrap
short_description: Take over a new Rancher server and log in to it
description:
  - Logs in as the local admin with O(password). When that fails because the server is new, logs
    in with O(bootstrap_password), sets O(password) (Rancher needs at least 12 characters) and
    logs in again. A server where neither password works fails with a message saying so.
  - Sets C(server-url) first, then every entry of O(settings), each only when it differs.
  - Returns a session token with a time to live of O(token_ttl) minutes, for later tasks in the
    same play. Register the result in a task with C(no_log) and delete the token at the end.
version_added: 0.1.0
author: Prompt Cluster maintainers
extends_documentation_fragment:
  - promptops.cluster.rancher_api
options:
  username:
    description: Local admin user.
    type: str
    default: admin
  password:
    description: The admin password to end up with (at least 12 characters).
    type: str
    required: true
  bootstrap_password:
    description: The password the container was started with (C(CATTLE_BOOTSTRAP_PASSWORD)).
    type: str
    default: ""
  server_url:
    description: Value of the C(server-url) setting, the URL agents and users reach Rancher at.
    type: str
    required: true
  settings:
    description: Further settings by name, for example C(telemetry-opt=out) or C(agent-tls-mode=strict).
    type: dict
    default: {}
  keep_token:
    description:
      - Return the session token for later tasks (then delete it at the end, see above).
      - V(false) deletes it before the module returns, also in check mode. For a play that needs
        no further API call, this saves the task that would delete it.
    type: bool
    default: true
  token_ttl:
    description: Time to live of the returned token, in minutes (0 keeps Rancher's default).
    type: int
    default: 60
notes:
  - Supports check mode. A new server cannot be read without changing its password, so in check
    mode a server that only accepts the bootstrap password is reported as changed and no token is returned.
"""

EXAMPLES = r"""
- name: Bootstrap Rancher
  promptops.cluster.rancher_bootstrap:
    url: https://127.0.0.1:8443
    validate_certs: false
    password: "{{ vault_rancher_admin_password }}"
    bootstrap_password: "{{ vault_rancher_bootstrap_password }}"
    server_url: https://rancher.example.com:8443
    settings:
      telemetry-opt: out
  register: rancher_session
  no_log: true
"""

RETURN = r"""
token:
  description: Session token C(token-xxxxx:secret); empty in check mode on a new server and with O(keep_token=false).
  type: str
  returned: always
token_name:
  description: Name of the token (the part before the colon), for deleting it.
  type: str
  returned: always
token_expires_at:
  description: When the token expires.
  type: str
  returned: always
password_changed:
  description: Whether the bootstrap password was replaced by O(password) in this run.
  type: bool
  returned: always
settings_changed:
  description: Names of the settings this run changed.
  type: list
  elements: str
  returned: always
server_version:
  description: Rancher's C(server-version) setting.
  type: str
  returned: always
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.promptops.cluster.plugins.module_utils.rancher import (  # noqa: E402
    MIN_PASSWORD_LENGTH,
    RancherClient,
    RancherError,
)


class BootstrapFailed(Exception):
    """A failure with a message of ours, for the task's result."""


def run(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    client = RancherClient(
        p["url"], validate_certs=p["validate_certs"], ca_path=p["ca_path"], dry_run=module.check_mode
    )
    ttl_ms = p["token_ttl"] * 60 * 1000
    result: dict[str, Any] = {
        "changed": False,
        "password_changed": False,
        "settings_changed": [],
        "token": "",
        "token_name": "",
        "token_expires_at": "",
        "server_version": "",
    }

    token = client.login(p["username"], p["password"], ttl_ms, "promptops.cluster rancher role")
    if token is None:
        if not p["bootstrap_password"]:
            raise BootstrapFailed("the admin password is not accepted and no bootstrap password was given.")
        first = client.login(p["username"], p["bootstrap_password"], ttl_ms, "promptops.cluster bootstrap")
        if first is None:
            raise BootstrapFailed(
                "Rancher accepts neither the admin password nor the bootstrap password. "
                "If the admin password was changed outside Ansible, put the current one in the vault; "
                "if the data directory comes from another install, its bootstrap password no longer applies."
            )
        result.update(changed=True, password_changed=True)
        try:
            if module.check_mode:  # the login made a real token: end it, report the change only
                return result
            client.use_token(first["token"])
            client.change_password(p["bootstrap_password"], p["password"])
        finally:
            client.logout(first["token"], even_in_dry_run=True)
        token = client.login(p["username"], p["password"], ttl_ms, "promptops.cluster rancher role")
        if token is None:
            raise BootstrapFailed("the new admin password was set but is not accepted for login.")

    try:
        return _configure(client, p, token, result)
    except BaseException:
        # The session is the caller's only on success; after a failure nobody would delete it.
        with contextlib.suppress(RancherError, OSError):  # the first error is the one to report
            client.logout(token["token"], even_in_dry_run=True)
        raise


def _configure(
    client: RancherClient, p: dict[str, Any], token: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    client.use_token(token["token"])
    # server-url goes first: Rancher builds agent manifests and tokens from it.
    wanted = [("server-url", p["server_url"])] + [(k, str(v)) for k, v in p["settings"].items() if k != "server-url"]
    for name, value in wanted:
        if client.ensure_setting(name, value):
            result["settings_changed"].append(name)
            result["changed"] = True
    result["server_version"] = client.get_setting("server-version")
    if not p["keep_token"]:
        client.logout(token["token"], even_in_dry_run=True)
        return result
    result.update(
        token=token["token"],
        token_name=token.get("name", token["token"].split(":", 1)[0]),
        token_expires_at=token.get("expiresAt", ""),
    )
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "username": {"type": "str", "default": "admin"},
            "password": {"type": "str", "required": True, "no_log": True},
            "bootstrap_password": {"type": "str", "default": "", "no_log": True},
            "server_url": {"type": "str", "required": True},
            "settings": {"type": "dict", "default": {}},
            "keep_token": {"type": "bool", "default": True},
            "token_ttl": {"type": "int", "default": 60, "no_log": False},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    if len(module.params["password"]) < MIN_PASSWORD_LENGTH:
        module.fail_json(msg=f"rancher_bootstrap: password needs at least {MIN_PASSWORD_LENGTH} characters.")
    try:
        module.exit_json(**run(module))
    except BootstrapFailed as err:
        module.fail_json(msg=f"rancher_bootstrap: {err}")
    except RancherError as err:
        module.fail_json(msg=f"rancher_bootstrap: {err}", status=err.status)


if __name__ == "__main__":
    main()
