#!/usr/bin/python
# Copyright: Prompt Cluster maintainers
# Apache-2.0 (see galaxy.yml)
"""Make sure a Rancher project exists in a cluster and the given principals hold project roles."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rancher_project
short_description: Ensure a Rancher project and its project role bindings
description:
  - Finds the project by O(name) in O(cluster_id) or creates it (C(POST /v3/projects)).
  - Adds a project role template binding for each entry of O(bindings) that does not exist yet.
    Bindings that exist but are not listed are left alone (people may add their own in the UI).
version_added: 0.1.0
author: Prompt Cluster maintainers
extends_documentation_fragment:
  - promptops.cluster.rancher_api
options:
  token:
    description: API token C(token-xxxxx:secret).
    type: str
    required: true
  cluster_id:
    description: Rancher's id of the cluster (C(c-xxxxx)).
    type: str
    required: true
  name:
    description: Project name.
    type: str
    required: true
  description:
    description: Description used when the project is created.
    type: str
    default: ""
  bindings:
    description: Project roles to grant.
    type: list
    elements: dict
    default: []
    suboptions:
      role:
        description: Role template id, e.g. C(project-member), C(project-owner), C(read-only).
        type: str
        required: true
      user_principal:
        description: User principal, e.g. C(local://u-abcde) or C(openldap_user://uid=ann,ou=people,dc=example).
        type: str
        default: ""
      group_principal:
        description: Group principal, e.g. C(openldap_group://cn=operators,ou=groups,dc=example).
        type: str
        default: ""
"""

EXAMPLES = r"""
- name: Give developers and operators the prompt services' project
  promptops.cluster.rancher_project:
    url: https://127.0.0.1:8443
    validate_certs: false
    token: "{{ rancher_session.token }}"
    cluster_id: "{{ rancher_import.cluster_id }}"
    name: prompt-services
    bindings:
      - {role: project-member, group_principal: "openldap_group://cn=developers,ou=groups,dc=example"}
      - {role: project-owner, group_principal: "openldap_group://cn=operators,ou=groups,dc=example"}
  no_log: true
"""

RETURN = r"""
project_id:
  description: Rancher's id of the project (C(c-xxxxx:p-xxxxx)); empty in check mode when it would be created.
  type: str
  returned: always
bindings_added:
  description: Number of bindings this run added.
  type: int
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.promptops.cluster.plugins.module_utils.rancher import RancherClient, RancherError  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "token": {"type": "str", "required": True, "no_log": True},
            "cluster_id": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "description": {"type": "str", "default": ""},
            "bindings": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "role": {"type": "str", "required": True},
                    "user_principal": {"type": "str", "default": ""},
                    "group_principal": {"type": "str", "default": ""},
                },
            },
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    bad = [b for b in p["bindings"] if bool(b["user_principal"]) == bool(b["group_principal"])]
    if bad:
        module.fail_json(
            msg=f"rancher_project: each binding needs exactly one of user_principal and group_principal: {bad}"
        )
    client = RancherClient(
        p["url"], token=p["token"], validate_certs=p["validate_certs"], ca_path=p["ca_path"], dry_run=module.check_mode
    )
    try:
        project, changed = client.ensure_project(p["cluster_id"], p["name"], p["description"])
        added = 0
        if project.get("id"):
            for b in p["bindings"]:
                added += client.ensure_project_binding(
                    project["id"], b["role"], b["user_principal"], b["group_principal"]
                )
        module.exit_json(changed=changed or added > 0, project_id=project.get("id", ""), bindings_added=added)
    except RancherError as err:
        module.fail_json(msg=f"rancher_project: {err}", status=err.status)


if __name__ == "__main__":
    main()
