#!/usr/bin/python
# Copyright: Prompt Cluster maintainers
# Apache-2.0 (see galaxy.yml)
"""Documentation of the file_tree action plugin (plugins/action/file_tree.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_tree
short_description: Write a set of files under one directory of the controller in one task
description:
  - Writes each entry of O(files) as a file under O(path), only when its bytes or its mode
    differ, through a temporary file in the same directory that is synced and renamed. A reader
    never sees half a file, and an unchanged file is not touched.
  - Removes the files of O(path) that match a pattern of O(prune) and are not in O(files).
  - Runs in the controller's worker process, without a module round trip, so its cost does not
    grow with the number of files. It refuses to run with a connection other than C(local), and
    writes as the user running Ansible (C(become) does not apply).
  - Every target is read before the first change. A target that is not a regular file (a
    directory, a symbolic link) is refused, and then nothing is written.
  - The prompt_service role writes its render tree (C(prompt_service_deploy_mode=render)) with it.
version_added: 0.1.0
author: Prompt Cluster maintainers
options:
  path:
    description: Absolute path of the directory; created with O(directory_mode) when missing.
    type: str
    required: true
  files:
    description:
      - File name (no directory part, not starting with a dot) to the file's text content.
      - With C(no_log=true) and C(diff=false) on the task the content (a kubeconfig, say) is
        shown nowhere.
    type: dict
    required: true
  mode:
    description:
      - Permission bits of every written file, as a quoted octal string. An unquoted YAML 0644 is
        the number 420 and is refused.
    type: str
    default: "0644"
  directory_mode:
    description:
      - Permission bits of O(path) when the task creates it (exactly, whatever the umask), as a
        quoted octal string.
    type: str
    default: "0755"
  prune:
    description:
      - Shell-style patterns of file names (C(service-*.yaml), no C(/)). Regular files and symbolic
        links of O(path) whose name matches one and is not a key of O(files) are removed. As in the
        shell, a pattern never matches a name that starts with a dot. Directories are never removed.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what would be written and removed, and writes nothing.
  diff_mode:
    support: full
    description: Shows the before and after text of each written file and each removal.
  platform:
    platforms: posix
    description: The controller.
"""

EXAMPLES = r"""
- name: Write the manifests for GitOps
  promptops.cluster.file_tree:
    path: /srv/gitops/prompt-services
    files:
      shared.yaml: "{{ lookup('ansible.builtin.template', 'shared.yaml.j2') }}"
      service-summarizer.yaml: "{{ lookup('ansible.builtin.template', 'service.yaml.j2') }}"
    prune: [service-*.yaml]
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The directory, normalised.
  returned: always
  type: str
written:
  description: Names of the files written (or, in check mode, that would be written), sorted.
  returned: always
  type: list
  elements: str
  sample: [service-summarizer.yaml]
removed:
  description: Names of the files removed (or that would be removed), sorted.
  returned: always
  type: list
  elements: str
  sample: [service-retired.yaml]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec={}, bypass_checks=True)
    module.fail_json(msg="file_tree runs as an action plugin on the controller; call it as promptops.cluster.file_tree")


if __name__ == "__main__":
    main()
