#!/usr/bin/python
# Copyright: Prompt Cluster maintainers
# Apache-2.0 (see galaxy.yml)
"""Make sure Rancher knows an imported cluster, and hand out its registration manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rancher_cluster
short_description: Find or create an imported cluster in Rancher and get its registration manifest
description:
  - Looks the cluster up by O(name) (C(GET /v3/clusters?name=)) and creates it only when it is
    missing (C(POST /v3/clusters)); Rancher does not refuse every duplicate itself, so the lookup
    comes first. A C(422 NotUnique) from a concurrent creation is resolved by reading the existing one.
  - Sets the C(rancher.io/imported-cluster-version-management) annotation to O(version_management)
    when it differs (Rancher 2.11 and later read it on imported RKE2/K3s clusters).
  - Returns the cluster's registration token C(manifestUrl), creating a registration token when
    the cluster has none, and with O(fetch_manifest) the manifest itself.
version_added: 0.1.0
author: Prompt Cluster maintainers
extends_documentation_fragment:
  - promptops.cluster.rancher_api
options:
  token:
    description: API token C(token-xxxxx:secret).
    type: str
    required: true
  name:
    description: Cluster name in Rancher.
    type: str
    required: true
  description:
    description: Description used when the cluster is created.
    type: str
    default: ""
  version_management:
    description:
      - Value of the per-cluster version management annotation. C(false) keeps Rancher from
        upgrading the cluster's Kubernetes; empty leaves the annotation alone.
    type: str
    choices: ["true", "false", system-default, ""]
    default: "false"
  registration:
    description: Whether to return the registration token and manifest URL (not needed to only read the state).
    type: bool
    default: true
  fetch_manifest:
    description: Also return the manifest text, read through O(url). It holds the registration token.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Register the RKE2 cluster in Rancher
  promptops.cluster.rancher_cluster:
    url: https://127.0.0.1:8443
    validate_certs: false
    token: "{{ rancher_session.token }}"
    name: prompt-cluster
    fetch_manifest: true
  register: rancher_import
  no_log: true
"""

RETURN = r"""
cluster_id:
  description: Rancher's id of the cluster (C(c-xxxxx)); empty in check mode when it would be created.
  type: str
  returned: always
state:
  description: Rancher's state of the cluster, C(active) once its agent is connected.
  type: str
  returned: always
created:
  description: Whether this run created the cluster.
  type: bool
  returned: always
manifest_url:
  description: URL of the registration manifest (contains the registration token).
  type: str
  returned: when O(registration)
manifest:
  description: The registration manifest.
  type: str
  returned: when O(fetch_manifest)
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.promptops.cluster.plugins.module_utils.rancher import (  # noqa: E402
    VERSION_MANAGEMENT_ANNOTATION,
    RancherClient,
    RancherError,
)


def run(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    client = RancherClient(
        p["url"], token=p["token"], validate_certs=p["validate_certs"], ca_path=p["ca_path"], dry_run=module.check_mode
    )
    existed = client.find_cluster(p["name"]) is not None
    annotations = {VERSION_MANAGEMENT_ANNOTATION: p["version_management"]} if p["version_management"] else {}
    cluster, changed = client.ensure_cluster(p["name"], p["description"], annotations)
    result = {
        "changed": changed,
        "created": not existed,
        "cluster_id": cluster.get("id", ""),
        "state": cluster.get("state", ""),
        "manifest_url": "",
        "manifest": "",
    }
    if p["registration"] and cluster.get("id"):
        token, token_changed = client.ensure_registration_token(cluster["id"])
        result["changed"] = result["changed"] or token_changed
        result["manifest_url"] = token.get("manifestUrl", "")
        if p["fetch_manifest"] and result["manifest_url"]:
            result["manifest"] = client.fetch_manifest(result["manifest_url"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "token": {"type": "str", "required": True, "no_log": True},
            "name": {"type": "str", "required": True},
            "description": {"type": "str", "default": ""},
            "version_management": {
                "type": "str",
                "default": "false",
                "choices": ["true", "false", "system-default", ""],
            },
            "registration": {"type": "bool", "default": True},
            "fetch_manifest": {"type": "bool", "default": False},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except RancherError as err:
        module.fail_json(msg=f"rancher_cluster: {err}", status=err.status)


if __name__ == "__main__":
    main()
