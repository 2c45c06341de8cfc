"""The file_tree action plugin (plugins/action/file_tree.py), run by ansible-playbook on the
controller as the prompt_service role runs it: writes only what differs, atomically, prunes by
pattern, honours check and diff mode, and refuses bad input before writing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible_runs import ROOT, run_task


def run_file_tree(tmp_path: Path, args: dict[str, Any], *flags: str, connection: str = "local") -> dict[str, Any]:
    """One file_tree task on localhost; its result."""
    return run_task(
        tmp_path, {"name": "Write the tree", "promptops.cluster.file_tree": args}, *flags, connection=connection
    )


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Content, mode and inode of each entry: an inode change means the file was rewritten."""
    return {
        p.name: (b"(directory)" if p.is_dir() else p.read_bytes(), p.stat().st_mode & 0o7777, p.stat().st_ino)
        for p in sorted(directory.iterdir())
    }


def test_writes_the_tree_then_a_second_run_touches_nothing(tmp_path: Path) -> None:
    tree = tmp_path / "render" / "nested"
    args = {"path": str(tree), "files": {"a.yaml": "a: 1\n", "b.md": "# b — ü 中文\n"}}

    first = run_file_tree(tmp_path, args)
    assert first["changed"] is True
    assert first["written"] == ["a.yaml", "b.md"]
    assert (tree / "b.md").read_text(encoding="utf-8") == "# b — ü 中文\n"
    assert tree.stat().st_mode & 0o777 == 0o755
    assert {name: mode for name, (_, mode, _) in snapshot(tree).items()} == {"a.yaml": 0o644, "b.md": 0o644}
    before = snapshot(tree)

    second = run_file_tree(tmp_path, args)
    assert second["changed"] is False
    assert second["written"] == []
    assert second["removed"] == []
    assert snapshot(tree) == before  # same bytes, modes and inodes: nothing rewritten


def test_rewrites_only_the_changed_file_and_prunes_by_pattern(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "keep.yaml").write_text("keep: 1\n")
    (tree / "service-old.yaml").write_text("old: 1\n")
    (tree / "service-dir.yaml").mkdir()  # directories are never removed
    (tree / "notes.txt").write_text("not managed\n")
    (tree / "service-link.yaml").symlink_to("/nonexistent")
    base = {"path": str(tree), "prune": ["service-*.yaml"]}
    run_file_tree(tmp_path, {**base, "files": {"keep.yaml": "keep: 1\n", "service-a.yaml": "a: 1\n"}})
    inode_keep = (tree / "keep.yaml").stat().st_ino

    result = run_file_tree(tmp_path, {**base, "files": {"keep.yaml": "keep: 1\n", "service-a.yaml": "a: 2\n"}})

    assert result["changed"] is True
    assert result["written"] == ["service-a.yaml"]
    assert result["removed"] == []  # the first run already pruned
    assert (tree / "service-a.yaml").read_text() == "a: 2\n"
    assert (tree / "keep.yaml").stat().st_ino == inode_keep
    assert sorted(p.name for p in tree.iterdir()) == ["keep.yaml", "notes.txt", "service-a.yaml", "service-dir.yaml"]
    assert not [p for p in tree.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_mode_change_alone_changes_the_mode_and_keeps_the_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    args = {"path": str(tree), "files": {"a": "x\n"}}
    run_file_tree(tmp_path, args)
    inode = (tree / "a").stat().st_ino

    result = run_file_tree(tmp_path, {**args, "mode": "0600"})

    assert result["changed"] is True
    assert result["written"] == ["a"]
    assert (tree / "a").stat().st_mode & 0o777 == 0o600
    assert (tree / "a").stat().st_ino == inode


def test_check_mode_reports_and_writes_nothing_and_diff_shows_the_text(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    run_file_tree(tmp_path, {"path": str(tree), "files": {"a.yaml": "a: 1\n", "service-x.yaml": "x\n"}})
    before = snapshot(tree)

    result = run_file_tree(
        tmp_path,
        {"path": str(tree), "files": {"a.yaml": "a: 2\n"}, "prune": ["service-*.yaml"]},
        "--check",
        "--diff",
    )

    assert result["changed"] is True
    assert result["written"] == ["a.yaml"]
    assert result["removed"] == ["service-x.yaml"]
    assert snapshot(tree) == before
    diffs = {d["after_header"].rsplit("/", 1)[-1]: d for d in result["diff"]}
    assert diffs["a.yaml"]["before"] == "a: 1\n"
    assert diffs["a.yaml"]["after"] == "a: 2\n"
    assert diffs["service-x.yaml"]["after"] == "(absent)\n"


def test_check_mode_on_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    tree = tmp_path / "absent"
    result = run_file_tree(tmp_path, {"path": str(tree), "files": {"a": "x"}}, "--check")
    assert result["changed"] is True
    assert result["written"] == ["a"]
    assert not tree.exists()


def test_bad_input_fails_naming_the_option_before_anything_is_written(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"path": str(tree), "files": {"ok": "x", "../escape": "x", ".hidden": "x", "a/b": "x"}}, "files keys"),
        ({"path": str(tree), "files": {"ok": "x", "list": ["a", "b"]}}, "files values must be text; not text: list"),
        ({"path": "relative/dir", "files": {"ok": "x"}}, "path must be an absolute path"),
        ({"path": str(tree), "files": {"ok": "x"}, "mode": "rw-r--r--"}, "mode must be an octal mode"),
        # YAML's unquoted 0640 is the number 416: refused, never read as mode "416".
        ({"path": str(tree), "files": {"ok": "x"}, "mode": 0o640}, "mode must be a quoted octal string"),
        ({"path": str(tree), "files": {"ok": "x"}, "directory_mode": 0o755}, "directory_mode must be a quoted"),
        ({"path": str(tree), "files": {"ok": "x"}, "prune": ["sub/*"]}, "prune patterns match file names"),
        ({"path": str(tree), "files": {1: "x", ".x": "y"}}, "files keys must be plain file names"),
    ]
    for args, message in cases:
        result = run_file_tree(tmp_path, args)
        assert result.get("failed") is True, args
        assert message in result["msg"], result["msg"]
        assert not tree.exists()
        assert not (ROOT / "relative").exists()
    escaped = run_file_tree(tmp_path, cases[0][0])
    assert "'../escape'" in escaped["msg"]
    assert "'.hidden'" in escaped["msg"]
    assert "'a/b'" in escaped["msg"]
    assert "'ok'" not in escaped["msg"]


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "tree"
    blocker.write_text("a file\n")
    result = run_file_tree(tmp_path, {"path": str(blocker), "files": {"a": "x"}})
    assert result.get("failed") is True
    assert "exists and is not a directory" in result["msg"]
    assert blocker.read_text() == "a file\n"


def test_only_a_local_connection_is_accepted(tmp_path: Path) -> None:
    """Writing the controller's files while the task targets a remote host would surprise."""
    tree = tmp_path / "tree"
    result = run_file_tree(tmp_path, {"path": str(tree), "files": {"a": "x"}}, connection="ssh")
    assert result.get("failed") is True
    assert "controller only" in result["msg"]
    assert not tree.exists()


def test_a_bad_target_late_in_the_list_changes_nothing(tmp_path: Path) -> None:
    """Every target is checked before the first write: an early file is not written either."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.yaml").write_text("old\n")
    (tree / "b.yaml").mkdir()
    before = snapshot(tree)

    result = run_file_tree(tmp_path, {"path": str(tree), "files": {"a.yaml": "new\n", "b.yaml": "x", "z": "z"}})

    assert result.get("failed") is True
    assert "b.yaml exists and is not a regular file" in result["msg"]
    assert snapshot(tree) == before


def test_a_failed_write_names_the_file(tmp_path: Path) -> None:
    """/proc/self is a directory in which nobody, root included, can create a file."""
    result = run_file_tree(tmp_path, {"path": "/proc/self", "files": {"promptops-test": "x"}})
    assert result.get("failed") is True
    assert "file_tree: cannot write /proc/self/promptops-test: " in result["msg"]


def test_prune_like_shell_globbing_leaves_dotfiles(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in (".gitkeep", "old.yaml", "keep"):
        (tree / name).write_text(name)

    result = run_file_tree(tmp_path, {"path": str(tree), "files": {"keep": "keep"}, "prune": ["*"]})

    assert result["removed"] == ["old.yaml"]
    assert sorted(p.name for p in tree.iterdir()) == [".gitkeep", "keep"]


def test_a_created_directory_gets_exactly_directory_mode(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    run_file_tree(tmp_path, {"path": str(tree), "files": {"a": "x"}, "directory_mode": "0770"})
    assert tree.stat().st_mode & 0o777 == 0o770
