"""The site preflight (playbooks/preflight.yml) as an operator meets it: ansible-playbook site.yml
on an inventory with several mistakes stops on the controller, names every mistake in one
list, and contacts no host. The hosts are .invalid names, so any contact would show as
UNREACHABLE."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from ansible_runs import ROOT, ansible_playbook

# Secrets of a test inventory, not real ones.
SECRETS = {
    "rke2_token": "test-token-not-secret",
    "prompt_service_redis_password": "test-redis-password",
    "prompt_service_postgres_password": "test-postgres-password",
    "prompt_service_upstream_api_keys": {"default": "test-upstream-key"},
}


def good_inventory(tmp_path: Path) -> dict[str, Any]:
    """An HA inventory the preflight accepts: the artifacts exist on the controller."""
    artifacts = tmp_path / "rke2-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "sha256sum-amd64.txt").write_text("0" * 64 + "  rke2.linux-amd64.tar.gz\n")
    archive = tmp_path / "rancher.tar"
    archive.write_bytes(b"not a real image archive")
    return {
        "all": {
            "vars": {
                "ansible_connection": "ssh",
                "rancher_admin_password": "a-long-admin-password",
                "rancher_bootstrap_password": "bootstrap-password-1",
                "rancher_image_source": "archive",
                "rancher_image_archive": str(archive),
                "rke2_artifact_dir": str(artifacts),
                "rke2_registration_address": "rke2.example.invalid",
                "docker_install_source": "distro",
                "prompt_service_deploy_mode": "render",
                "prompt_service_render_dir": str(tmp_path / "render"),
                "prompt_services": [{"name": "summarizer", "image_tag": "0.1.0"}],
                **SECRETS,
            },
            "children": {
                "docker_hosts": {"hosts": {"r1.invalid": {}}},
                "rancher_servers": {"hosts": {"r1.invalid": {}}},
                "rke2_servers": {"hosts": {"s1.invalid": {}, "s2.invalid": {}, "s3.invalid": {}}},
                "rke2_agents": {"hosts": {"a1.invalid": {}}},
            },
        }
    }


def site(
    tmp_path: Path, inventory: dict[str, Any], *args: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return ansible_playbook(
        "-i",
        str(path),
        str(ROOT / "site.yml"),
        "-e",
        "site_preflight_check_downloads=false",  # no network here; the download checks are the demo's
        *args,
        env={"HOME": str(home)} if home else None,
    )


def test_every_mistake_is_named_in_one_list_before_any_host_is_contacted(tmp_path: Path) -> None:
    inventory = good_inventory(tmp_path)
    settings = inventory["all"]["vars"]
    settings["rancher_admin_password"] = "short"
    settings["rancher_image_archive"] = str(tmp_path / "missing.tar")
    settings["rke2_artifact_dir"] = str(tmp_path / "empty-dir")
    settings["docker_install_source"] = "bogus"
    del settings["rke2_token"]
    del settings["rke2_registration_address"]
    del inventory["all"]["children"]["rke2_servers"]["hosts"]["s3.invalid"]

    result = site(tmp_path, inventory)
    out = result.stdout

    assert result.returncode != 0
    assert "Preflight found 7 problem(s); nothing was changed" in out, out[-3000:]
    for expected in [
        "value of docker_install_source must be one of: docker-ce, distro, got: bogus (r1.invalid)",
        "rke2_registration_address is empty with 2 servers",
        "group rke2_servers has 2 hosts: etcd needs an odd number",
        "rancher_admin_password is shorter than 12 characters",
        f"rke2_artifact_dir {tmp_path / 'empty-dir'} holds no sha256sum-amd64.txt",
        f"rancher_image_archive {tmp_path / 'missing.tar'} does not exist on the controller",
        "secrets missing: rke2_token",
    ]:
        assert expected in " ".join(out.split()), expected
    assert "short" not in out.replace("shorter", "")  # the password's value is never shown
    assert "UNREACHABLE" not in out
    assert "r1.invalid" not in out.split("PLAY RECAP")[-1]


def test_the_same_inventory_corrected_passes_the_preflight(tmp_path: Path) -> None:
    """The contrast to the test above: only the platform plays' first contact fails (the hosts
    do not exist), so the preflight accepted the inventory."""
    result = site(tmp_path, good_inventory(tmp_path))
    out = result.stdout

    assert "Preflight found" not in out, out[-3000:]
    assert "UNREACHABLE" in out
    assert "PLAY [Gather the facts the roles read]" in out


def test_a_bad_service_entry_stops_a_render_run_before_anything_is_written(tmp_path: Path) -> None:
    inventory = good_inventory(tmp_path)
    inventory["all"]["vars"]["prompt_services"] = [{"name": "Bad_Name", "image_tag": "0.1.0"}]

    result = site(tmp_path, inventory, "--tags", "prompt_service")

    assert result.returncode != 0
    assert "Bad_Name" in result.stdout
    assert "UNREACHABLE" not in result.stdout
    assert not (tmp_path / "render").exists()


def test_tags_preflight_alone_checks_the_inventory_as_for_a_whole_run(tmp_path: Path) -> None:
    inventory = good_inventory(tmp_path)
    settings = inventory["all"]["vars"]
    settings["rancher_version"] = "bogus"
    settings["prompt_service_deploy_mode"] = "apply"
    del settings["prompt_service_redis_password"]

    result = site(tmp_path, inventory, "--tags", "preflight")

    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert "Preflight found 2 problem(s)" in flat, result.stdout[-3000:]
    assert "rancher_version must look like v2.13.3, got bogus" in flat
    assert "secrets missing: prompt_service_redis_password" in flat
    assert "UNREACHABLE" not in result.stdout


def test_an_inventory_can_say_how_it_provides_its_secrets(tmp_path: Path) -> None:
    inventory = good_inventory(tmp_path)
    inventory["all"]["vars"]["prompt_service_deploy_mode"] = "apply"
    inventory["all"]["vars"]["site_secrets_hint"] = "Export OPENAI_API_KEY."
    del inventory["all"]["vars"]["prompt_service_upstream_api_keys"]

    result = site(tmp_path, inventory, "--tags", "preflight")

    assert "secrets missing: prompt_service_upstream_api_keys. Export OPENAI_API_KEY." in " ".join(
        result.stdout.split()
    )


def test_artifact_paths_under_the_home_directory_are_found(tmp_path: Path) -> None:
    """The roles read ~/... paths on the controller, so the preflight must too."""
    inventory = good_inventory(tmp_path)
    home = tmp_path / "home"
    (home / "rke2").mkdir(parents=True)
    (home / "rke2" / "sha256sum-amd64.txt").write_text("0" * 64 + "  rke2.linux-amd64.tar.gz\n")
    (home / "rancher.tar").write_bytes(b"archive")
    inventory["all"]["vars"].update(rke2_artifact_dir="~/rke2", rancher_image_archive="~/rancher.tar")

    result = site(tmp_path, inventory, "--tags", "preflight", home=home)

    assert result.returncode == 0, result.stdout[-3000:]
