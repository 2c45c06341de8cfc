"""Unit tests of roles/backup/files/promptops-backup, the command the backup role installs.

The Molecule scenario `backup` runs the command for real against etcd, PostgreSQL and a Docker
container. These tests cover what it cannot: retention edge cases, the version refusal, the
RKE2 job type (with a fixture `rke2` script that stands in for the real binary) and the failure
bookkeeping, with small fixture programs written into tmp_path.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "backup" / "files" / "promptops-backup"
UTC = dt.UTC
# Python of the oldest supported host (Ubuntu 22.04): the command and the modules run there.
OLDEST_HOST_PYTHON = "3.10"


def load_command() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("promptops_backup", str(SCRIPT))
    spec = importlib.util.spec_from_loader("promptops_backup", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["promptops_backup"] = module  # dataclasses look their module up there
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside the role
    try:
        loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


pb = load_command()


@pytest.fixture(autouse=True)
def _process_state() -> Any:
    """main() sets the umask and signal handlers of its process: give each test a clean one."""
    umask = os.umask(0o022)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    os.umask(umask)
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_runs_on_the_python_of_every_supported_host() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "vermin"),
            f"--target={OLDEST_HOST_PYTHON}-",
            "--violations",
            "--no-tips",
            "--eval-annotations",
            str(SCRIPT),
            str(ROOT / "plugins" / "modules"),
            str(ROOT / "plugins" / "module_utils"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def copy_at(tmp_path: Path, stamp: str, seq: int = 0) -> Any:
    suffix = f"-{seq}" if seq else ""
    path = tmp_path / f"job-{stamp}{suffix}.dump"
    path.write_bytes(b"x")
    return pb.parse_copy(path, "job", "dump")


def fake_program(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def etcd_snapshot_bytes(pages: int = 2) -> bytes:
    db = os.urandom(512 * pages * 8)
    return db + hashlib.sha256(db).digest()


# --------------------------------------------------------------------------- retention


def test_retention_keeps_count_newest_first(tmp_path: Path) -> None:
    copies = [copy_at(tmp_path, f"2026010{d}T000000Z") for d in range(1, 6)]
    expired = pb.select_expired(copies, 2, 0, dt.datetime(2026, 1, 6, tzinfo=UTC))
    assert sorted(c.path.name for c in expired) == [
        "job-20260101T000000Z.dump",
        "job-20260102T000000Z.dump",
        "job-20260103T000000Z.dump",
    ]


def test_retention_by_age_never_deletes_the_newest(tmp_path: Path) -> None:
    """Backups that failed for weeks: every copy is past the age limit, the newest one stays."""
    copies = [copy_at(tmp_path, "20260101T000000Z"), copy_at(tmp_path, "20260102T000000Z")]
    expired = pb.select_expired(copies, 7, 14, dt.datetime(2026, 3, 1, tzinfo=UTC))
    assert [c.path.name for c in expired] == ["job-20260101T000000Z.dump"]


def test_retention_of_one_keeps_only_the_newest(tmp_path: Path) -> None:
    copies = [copy_at(tmp_path, "20260101T000000Z"), copy_at(tmp_path, "20260101T000000Z", 2)]
    expired = pb.select_expired(copies, 1, 0, dt.datetime(2026, 1, 2, tzinfo=UTC))
    assert [c.path.name for c in expired] == ["job-20260101T000000Z.dump"]


def test_retention_refuses_to_keep_nothing() -> None:
    with pytest.raises(ValueError, match="keep_count"):
        pb.select_expired([], 0, 0, dt.datetime(2026, 1, 1, tzinfo=UTC))


def test_listing_ignores_partials_and_other_jobs(tmp_path: Path) -> None:
    for name in (
        "job-20260101T000000Z.dump",
        "job-20260102T000000Z.dump",
        ".job-20260103T000000Z.dump.partial",
        "other-20260104T000000Z.dump",
        "job-20260105T000000Z.db",
    ):
        (tmp_path / name).write_bytes(b"x")
    assert [c.path.name for c in pb.list_copies(tmp_path, "job", "dump")] == [
        "job-20260102T000000Z.dump",
        "job-20260101T000000Z.dump",
    ]


def test_names_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    first = pb.final_name(tmp_path, "job", "dump", now)
    first.write_bytes(b"x")
    second = pb.final_name(tmp_path, "job", "dump", now)
    assert (first.name, second.name) == ("job-20260101T120000Z.dump", "job-20260101T120000Z-2.dump")
    second.write_bytes(b"x")
    assert pb.list_copies(tmp_path, "job", "dump")[0].path == second


# --------------------------------------------------------------------------- PostgreSQL versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 150018),
        ("pg_dump (PostgreSQL) 16.4", 160004),
        ("pg_dump (PostgreSQL) 9.6.24", 90600),
        ("170002", 170002),
    ],
)
def test_pg_versions_are_read(text: str, expected: int) -> None:
    assert pb.pg_version_num(text) == expected


def pg_job(tmp_path: Path, client: str, server: str) -> dict[str, Any]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_program(
        bin_dir / "pg_dump", f'[ "$1" = --version ] && echo "pg_dump (PostgreSQL) {client}" && exit 0\nexit 3\n'
    )
    fake_program(bin_dir / "psql", f"echo {server}\n")
    return {"name": "ledger", "type": "postgresql", "database": "ledger", "pg_bin_dir": str(bin_dir)}


def test_older_client_is_refused(tmp_path: Path) -> None:
    job = pg_job(tmp_path, "15.8", "160004")
    with pytest.raises(pb.BackupError, match=r"pg_dump 15 is older than the server \(16\)"):
        pb.Postgres(job).check_versions()


def test_newer_or_equal_client_is_accepted(tmp_path: Path) -> None:
    job = pg_job(tmp_path, "16.1", "160004")
    assert pb.Postgres(job).check_versions() == (160001, 160004)


def test_kubectl_mode_keeps_the_password_in_the_pod(tmp_path: Path) -> None:
    job = {
        "name": "ledger",
        "type": "postgresql",
        "mode": "kubectl",
        "database": "ledger",
        "user": "ledger",
        "namespace": "prompt",
        "pod": "postgres-0",
        "container": "postgres",
        "password_env": "POSTGRES_PASSWORD",
        "kubectl": "/k",
        "kubeconfig": "/kc",
    }
    argv = pb.Postgres(job).client("pg_dump", "-Fc", database="ledger")
    assert argv[:9] == ["/k", "--kubeconfig", "/kc", "--namespace", "prompt", "exec", "postgres-0", "-c", "postgres"]
    assert argv[9:13] == ["--", "sh", "-c", 'PGPASSWORD="$(printenv "$0")" exec "$@"']
    assert argv[13:] == ["POSTGRES_PASSWORD", "pg_dump", "-w", "-U", "ledger", "-d", "ledger", "-Fc"]


# --------------------------------------------------------------------------- etcd and tarballs


def test_etcd_hash_detects_truncation_and_corruption(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    good.write_bytes(etcd_snapshot_bytes())
    assert pb.check_etcd_hash(good) == "etcd snapshot hash matches"
    cut = tmp_path / "cut.db"
    cut.write_bytes(good.read_bytes()[:4096])
    with pytest.raises(pb.BackupError, match="not a complete etcd snapshot"):
        pb.check_etcd_hash(cut)
    flipped = bytearray(good.read_bytes())
    flipped[100] ^= 0xFF
    bad = tmp_path / "bad.db"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(pb.BackupError, match="hash does not match"):
        pb.check_etcd_hash(bad)


def test_truncated_tarball_is_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = os.urandom(200_000)
        info = tarfile.TarInfo("rancher/blob")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    members, _ = pb.verify_tarball(archive, expect_prefix="rancher")
    assert [m.name for m in members] == ["rancher/blob"]
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size - 10])  # only the gzip trailer is missing
    with pytest.raises(pb.BackupError, match="not a complete gzip tarball"):
        pb.verify_tarball(cut)


# --------------------------------------------------------------------------- whole runs with fixtures


def setup_config(tmp_path: Path, jobs: dict[str, dict[str, Any]]) -> Path:
    config = tmp_path / "etc"
    (config / "jobs").mkdir(parents=True)
    (config / "secrets").mkdir()
    settings = {
        "target_dir": str(tmp_path / "backups"),
        "state_dir": str(tmp_path / "state"),
        "metrics_dir": str(tmp_path / "metrics"),
        "lock_dir": str(tmp_path / "lock"),
        "webhook_url": "",
    }
    (config / "config.json").write_text(json.dumps(settings))
    for name, job in jobs.items():
        (config / "jobs" / f"{name}.json").write_text(json.dumps(job))
    return config


def metrics(tmp_path: Path, job: str) -> dict[str, float]:
    text = (tmp_path / "metrics" / f"promptops_backup_{job}.prom").read_text()
    return {
        line.split("{")[0].removeprefix("promptops_backup_"): float(line.split()[-1])
        for line in text.splitlines()
        if not line.startswith("#")
    }


def fake_etcdctl(tmp_path: Path, snapshot: Path) -> Path:
    """Fixture etcdctl: `snapshot save` copies a prepared snapshot (or fails when FAIL exists)."""
    return fake_program(
        tmp_path / "etcdctl",
        f"""case "$2 $3" in
  "snapshot save") [ -e {tmp_path}/FAIL ] && {{ echo "context deadline exceeded" >&2; exit 1; }}
                   cp {snapshot} "$4.part" && mv "$4.part" "$4" ;;
  *) case "$1 $2" in "snapshot status") echo '{{"hash":1,"revision":7,"totalKey":3,"totalSize":8192}}' ;; esac ;;
esac
""",
    )


def test_failed_run_keeps_copies_and_last_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = tmp_path / "snap.db"
    snapshot.write_bytes(etcd_snapshot_bytes())
    etcdctl = fake_etcdctl(tmp_path, snapshot)
    config = setup_config(tmp_path, {"etcd": {"type": "etcd-generic", "etcdctl": str(etcdctl), "retention_count": 2}})
    assert pb.main(["--config-dir", str(config), "run", "etcd"]) == 0
    first = metrics(tmp_path, "etcd")
    assert first["verified_copies"] == 1
    assert first["last_run_success"] == 1
    target = tmp_path / "backups" / "etcd"
    before = sorted(p.name for p in target.iterdir())

    (tmp_path / "FAIL").touch()
    assert pb.main(["--config-dir", str(config), "run", "etcd"]) == 1
    assert "context deadline exceeded" in capsys.readouterr().err
    after = metrics(tmp_path, "etcd")
    assert sorted(p.name for p in target.iterdir()) == before  # no final file, no partial file
    assert after["last_success_timestamp_seconds"] == first["last_success_timestamp_seconds"]
    assert after["last_failure_timestamp_seconds"] > 0
    assert after["last_run_success"] == 0

    (tmp_path / "FAIL").unlink()
    for _ in range(3):
        assert pb.main(["--config-dir", str(config), "run", "etcd"]) == 0
    assert metrics(tmp_path, "etcd")["verified_copies"] == 2
    assert len(list(target.iterdir())) == 2


def test_a_snapshot_that_fails_verification_never_becomes_a_copy(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap.db"
    snapshot.write_bytes(etcd_snapshot_bytes()[:-1])
    config = setup_config(
        tmp_path, {"etcd": {"type": "etcd-generic", "etcdctl": str(fake_etcdctl(tmp_path, snapshot))}}
    )
    assert pb.main(["--config-dir", str(config), "run", "etcd"]) == 1
    assert list((tmp_path / "backups" / "etcd").iterdir()) == []


def test_runs_never_overlap(tmp_path: Path) -> None:
    held = pb.job_lock(tmp_path, "etcd")
    second = pb.job_lock(tmp_path, "etcd")
    with held, pytest.raises(pb.BackupError, match="another run holds the lock"), second:
        pass


def rke2_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """A fixture rke2 binary and data dir: save writes a snapshot, list prints the directory."""
    data_dir = tmp_path / "rke2"
    snaps = data_dir / "server" / "db" / "snapshots"
    snaps.mkdir(parents=True)
    token = data_dir / "server" / "token"
    token.write_text("K10fixture::server:secret\n")
    token.chmod(0o644)  # the copy must be 0600 whatever the source's mode
    source = tmp_path / "snapshot-source"
    source.write_bytes(etcd_snapshot_bytes())
    rke2 = fake_program(
        tmp_path / "rke2-fixture",
        f"""[ "$1" = etcd-snapshot ] || exit 2
case "$2" in
  save) cp {source} {snaps}/"$4"-node1-1700000000 ;;
  list) echo "Name Location Size Created"; for f in {snaps}/*; do echo "$(basename "$f") file://$f 1 x"; done ;;
  *) exit 2 ;;
esac
""",
    )
    return rke2, data_dir


def test_rke2_job_copies_snapshot_and_token(tmp_path: Path) -> None:
    rke2, data_dir = rke2_fixture(tmp_path)
    config = setup_config(
        tmp_path, {"rke2": {"type": "etcd-rke2", "rke2_bin": str(rke2), "rke2_data_dir": str(data_dir)}}
    )
    # nothing scheduled yet and no on-demand snapshot asked for: the run fails
    assert pb.main(["--config-dir", str(config), "run", "rke2"]) == 1
    assert pb.main(["--config-dir", str(config), "run", "rke2", "--snapshot-name", "pre-upgrade-1"]) == 0
    (copy,) = (tmp_path / "backups" / "rke2").iterdir()
    assert copy.stat().st_mode & 0o777 == 0o600
    with tarfile.open(copy, "r:gz") as tar:
        names = sorted(tar.getnames())
        token = tar.getmember("token")
    assert names == ["MANIFEST.json", "etcd-snapshot-list.txt", "snapshots/pre-upgrade-1-node1-1700000000", "token"]
    assert token.mode == 0o600
    assert "checksums match" in pb.etcd_rke2_verify(copy)


def test_rke2_copy_with_a_damaged_snapshot_fails_verification(tmp_path: Path) -> None:
    archive = tmp_path / "rke2-20260101T000000Z.tar.gz"
    snapshot = bytearray(etcd_snapshot_bytes())
    snapshot[10] ^= 1
    # The manifest matches what was archived: only etcd's own hash trailer shows the damage.
    manifest = {
        "snapshot": "s",
        "sha256": {"snapshots/s": hashlib.sha256(snapshot).hexdigest(), "token": hashlib.sha256(b"t").hexdigest()},
    }
    with gzip.open(archive, "wb") as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for name, data in (
            ("snapshots/s", bytes(snapshot)),
            ("token", b"t"),
            ("MANIFEST.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(pb.BackupError, match="hash does not match its contents"):
        pb.etcd_rke2_verify(archive)


def test_record_failure_sets_the_metric(tmp_path: Path) -> None:
    config = setup_config(tmp_path, {"ledger": {"type": "postgresql", "database": "ledger"}})
    assert pb.main(["--config-dir", str(config), "record-failure", "promptops-backup-ledger.service"]) == 0
    values = metrics(tmp_path, "ledger")
    assert values["last_failure_timestamp_seconds"] > 0
    assert values["last_success_timestamp_seconds"] == 0
    assert values["max_age_seconds"] == 26 * 3600


def test_restore_needs_confirmation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = setup_config(tmp_path, {"ledger": {"type": "postgresql", "database": "ledger"}})
    assert pb.main(["--config-dir", str(config), "restore", "ledger"]) == 1
    assert "add --yes" in capsys.readouterr().err


def test_rke2_job_refuses_a_snapshot_older_than_max_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A dead snapshot schedule must not hide behind copies of the same old snapshot."""
    rke2, data_dir = rke2_fixture(tmp_path)
    config = setup_config(
        tmp_path,
        {"rke2": {"type": "etcd-rke2", "rke2_bin": str(rke2), "rke2_data_dir": str(data_dir), "max_age_hours": 26}},
    )
    old = data_dir / "server" / "db" / "snapshots" / "etcd-snapshot-node1-1700000000"
    old.write_bytes(etcd_snapshot_bytes())
    stamp = time.time() - 30 * 3600
    os.utime(old, (stamp, stamp))

    assert pb.main(["--config-dir", str(config), "run", "rke2"]) == 1
    assert "30 h old" in capsys.readouterr().err
    assert list((tmp_path / "backups" / "rke2").iterdir()) == []

    os.utime(old)  # the schedule took it just now
    assert pb.main(["--config-dir", str(config), "run", "rke2"]) == 0


def test_stale_partials_of_another_job_in_the_same_target_are_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / ".db-20260101T000000Z.dump.partial"
    theirs = tmp_path / ".db-archive-20260101T000000Z.dump.partial"
    for path in (mine, theirs):
        path.write_bytes(b"x")
    pb.remove_stale_partials(tmp_path, "db", "dump")
    assert (mine.exists(), theirs.exists()) == (False, True)


def test_no_retention_keeps_every_copy(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap.db"
    snapshot.write_bytes(etcd_snapshot_bytes())
    config = setup_config(
        tmp_path,
        {"etcd": {"type": "etcd-generic", "etcdctl": str(fake_etcdctl(tmp_path, snapshot)), "retention_count": 1}},
    )
    assert pb.main(["--config-dir", str(config), "run", "etcd"]) == 0
    assert pb.main(["--config-dir", str(config), "run", "etcd", "--no-retention"]) == 0
    assert len(list((tmp_path / "backups" / "etcd").iterdir())) == 2
    assert pb.main(["--config-dir", str(config), "run", "etcd"]) == 0
    assert len(list((tmp_path / "backups" / "etcd").iterdir())) == 1


def fake_docker(tmp_path: Path) -> Path:
    """Fixture docker: a running `rancher` container whose `docker cp` hangs; calls are logged."""
    calls = tmp_path / "docker-calls"
    return fake_program(
        tmp_path / "docker",
        f"""echo "$*" >> {calls}
case "$1" in
  inspect) echo '[{{"Config": {{"Image": "rancher/rancher:v2.13.3"}}, "State": {{"Running": true}}, "Mounts": []}}]' ;;
  cp) sleep 60 ;;
esac
exit 0
""",
    )


def test_a_run_stopped_by_systemd_starts_rancher_again_and_leaves_no_partial(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path)
    config = setup_config(tmp_path, {"rancher": {"type": "rancher-data", "docker_bin": str(docker)}})
    marker = tmp_path / "state" / "rancher.rancher-stopped"
    run = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--config-dir", str(config), "run", "rancher"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while "cp " not in ((tmp_path / "docker-calls").read_text() if (tmp_path / "docker-calls").exists() else ""):
        assert time.monotonic() < deadline, "the run never reached docker cp"
        time.sleep(0.05)
    assert marker.exists()  # Rancher is stopped: ensure-started would start it

    run.send_signal(signal.SIGTERM)  # what systemd sends at TimeoutStartSec
    _, err = run.communicate(timeout=20)

    assert run.returncode == 143, err
    calls = (tmp_path / "docker-calls").read_text().splitlines()
    assert calls[-1] == "start rancher"
    assert any(c.startswith("rm ") for c in calls)  # the data container is gone too
    assert not marker.exists()
    assert list((tmp_path / "backups" / "rancher").iterdir()) == []
    assert metrics(tmp_path, "rancher")["last_run_success"] == 0


def test_ensure_started_starts_rancher_only_after_a_killed_run(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path)
    config = setup_config(tmp_path, {"rancher": {"type": "rancher-data", "docker_bin": str(docker)}})
    calls = tmp_path / "docker-calls"

    assert pb.main(["--config-dir", str(config), "ensure-started", "rancher"]) == 0
    assert not calls.exists()  # no marker: Rancher was not stopped by a run, leave it alone

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "rancher.rancher-stopped").write_text("rancher\n")  # a run killed with SIGKILL
    assert pb.main(["--config-dir", str(config), "ensure-started", "rancher"]) == 0
    assert calls.read_text().splitlines() == ["start rancher"]
    assert not (tmp_path / "state" / "rancher.rancher-stopped").exists()


def test_init_writes_metrics_before_the_first_run(tmp_path: Path) -> None:
    config = setup_config(tmp_path, {"ledger": {"type": "postgresql", "database": "ledger"}})
    before = time.time()
    assert pb.main(["--config-dir", str(config), "init", "ledger"]) == 0
    values = metrics(tmp_path, "ledger")
    assert values["last_success_timestamp_seconds"] == 0
    assert values["scheduled_since_timestamp_seconds"] >= int(before)
    first = values["scheduled_since_timestamp_seconds"]
    assert pb.main(["--config-dir", str(config), "init", "ledger"]) == 0  # a second init keeps the time
    assert metrics(tmp_path, "ledger")["scheduled_since_timestamp_seconds"] == first


def test_alert_rules_use_only_metrics_the_command_writes() -> None:
    import yaml

    rules = yaml.safe_load((ROOT / "roles" / "backup" / "files" / "backup-alerts.yml").read_text())
    exported = {
        line.split("{")[0]
        for line in pb.render_metrics(
            {"name": "x", "type": "postgresql"}, pb.read_state({"state_dir": "/nonexistent"}, "x")
        ).splitlines()
        if not line.startswith("#")
    }
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= set(re.findall(r"\bpromptops_backup_[a-z_]+", rule["expr"]))
    assert used
    assert used <= exported, used - exported


def test_bad_job_settings_and_missing_files_get_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_config(
        tmp_path,
        {
            "retabc": {"type": "etcd-generic", "retention_count": "abc"},
            "etcd": {"type": "etcd-generic"},
        },
    )
    assert pb.main(["--config-dir", str(config), "run", "retabc"]) == 1
    assert "retention_count must be a number, got 'abc'" in capsys.readouterr().err
    assert pb.main(["--config-dir", str(config), "verify", "etcd", "--file", str(tmp_path / "missing.db")]) == 1
    assert "missing.db does not exist" in capsys.readouterr().err
    assert pb.main(["--config-dir", str(config), "run", "Bad_Name"]) == 1
    assert "a-z, 0-9 and '-'" in capsys.readouterr().err


def test_a_truncated_zip_snapshot_is_a_failed_check(tmp_path: Path) -> None:
    snapshot = tmp_path / "etcd-snapshot-node1-1700000000.zip"
    snapshot.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(pb.BackupError, match="not a complete zip archive"):
        pb.check_rke2_snapshot(snapshot)
