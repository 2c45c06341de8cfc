"""Action plugin promptops.cluster.file_tree: write a set of files under one directory of the
controller in a single task (documentation: plugins/modules/file_tree.py).

It runs inside the controller's worker process, without a module round trip: rendering the
prompt services' manifests costs one task whatever the number of files. Each file is written
only when its bytes or mode differ, through a temporary file in the same directory that is
synced and renamed over the old one, so a reader never sees half a file.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

NAME = re.compile(r"^[^./\x00][^/\x00]*$")
MODE = re.compile(r"^0?[0-7]{3}$")

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "str", "required": True},
    "files": {"type": "dict", "required": True},
    "mode": {"type": "str", "default": "0644"},
    "directory_mode": {"type": "str", "default": "0755"},
    "prune": {"type": "list", "elements": "str", "default": []},
}


def _check_raw(raw: dict[str, Any]) -> None:
    """Refuse what the argument spec would silently convert: YAML reads an unquoted 0644 as the
    number 420, which would pass as the string "420"."""
    for option in ("mode", "directory_mode"):
        if option in raw and not isinstance(raw[option], str):
            raise AnsibleActionFail(
                f"file_tree: {option} must be a quoted octal string such as '0644', got {raw[option]!r}"
                " (YAML reads an unquoted 0644 as the number 420)"
            )


def _check(args: dict[str, Any]) -> None:
    """Refuse bad input before anything is written, naming the option and what it allows."""
    if "\x00" in args["path"] or not Path(args["path"]).is_absolute():
        raise AnsibleActionFail(f"file_tree: path must be an absolute path, got {args['path']!r}")
    for option in ("mode", "directory_mode"):
        if not MODE.match(args[option]):
            raise AnsibleActionFail(f"file_tree: {option} must be an octal mode such as 0644, got {args[option]!r}")
    bad = sorted((name for name in args["files"] if not isinstance(name, str) or not NAME.match(name)), key=str)
    if bad:
        raise AnsibleActionFail(
            "file_tree: files keys must be plain file names (no '/', not starting with '.'),"
            f" got {', '.join(map(repr, bad))}"
        )
    not_text = sorted(name for name, content in args["files"].items() if not isinstance(content, str))
    if not_text:
        raise AnsibleActionFail(f"file_tree: files values must be text; not text: {', '.join(not_text)}")
    patterns = [p for p in args["prune"] if not p or "/" in p]
    if patterns:
        raise AnsibleActionFail(
            "file_tree: prune patterns match file names in path (no '/', not empty),"
            f" got {', '.join(map(repr, patterns))}"
        )


def _current(path: Path) -> tuple[bytes | None, int | None]:
    """The bytes and permission bits of a regular file, or (None, None) when it does not exist."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(info.st_mode):
        raise AnsibleActionFail(f"file_tree: {path} exists and is not a regular file")
    return path.read_bytes(), stat.S_IMODE(info.st_mode)


def _write_atomically(target: Path, data: bytes, mode: int) -> None:
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:40]}.")
    except OSError as err:  # name the file asked for, not the temporary one
        raise OSError(err.errno, err.strerror, str(target)) from err
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(target)) from err
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible ships no type hints
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        del tmp
        if self._connection.transport != "local":
            raise AnsibleActionFail(
                "file_tree: writes on the controller only; run the task with connection: local"
                " (or delegate_to: localhost)"
            )
        _check_raw(self._task.args)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        _check(args)
        try:
            return self._apply(args, result)
        except OSError as err:
            where = f" {err.filename}" if err.filename else ""
            raise AnsibleActionFail(f"file_tree: cannot write{where}: {err.strerror or err}") from None

    def _apply(self, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        directory = Path(os.path.normpath(args["path"]))  # normpath: no symlink resolution
        file_mode = int(args["mode"], 8)
        check_mode = bool(self._task.check_mode)
        diffs: list[dict[str, Any]] = []

        created = not directory.is_dir()
        if created and (directory.exists() or directory.is_symlink()):
            raise AnsibleActionFail(f"file_tree: path {directory} exists and is not a directory")

        # Plan first: every target is read (and refused when it is not a regular file) before
        # the first change, so bad input leaves the tree as it was.
        writes: list[tuple[Path, bytes, bool]] = []  # target, bytes, whether the bytes differ
        for name in sorted(args["files"]):
            target = directory / name
            data = to_bytes(args["files"][name], errors="surrogate_or_strict")
            before, before_mode = (None, None) if created else _current(target)
            if before == data and before_mode == file_mode:
                continue
            writes.append((target, data, before != data))
            diffs.append(
                {
                    "before_header": str(target),
                    "after_header": str(target),
                    "before": "" if before is None else to_text(before, errors="surrogate_or_replace"),
                    "after": args["files"][name],
                }
            )
        removals: list[Path] = []
        if not created:
            for target in sorted(directory.iterdir()):
                entry = target.name
                # Like the shell's globbing, a pattern never matches a name starting with '.'.
                if entry.startswith(".") or entry in args["files"]:
                    continue
                if not any(fnmatch.fnmatchcase(entry, p) for p in args["prune"]):
                    continue
                if target.is_symlink() or target.is_file():
                    removals.append(target)
                    diffs.append(
                        {
                            "before_header": str(target),
                            "after_header": str(target),
                            "before": "(present)\n",
                            "after": "(absent)\n",
                        }
                    )

        if not check_mode:
            if created:
                directory.mkdir(parents=True)
                directory.chmod(int(args["directory_mode"], 8))  # exactly, whatever the umask
            for target, data, content_differs in writes:
                if content_differs:
                    _write_atomically(target, data, file_mode)
                else:
                    target.chmod(file_mode)
            for target in removals:
                target.unlink()
            if writes or removals:
                _sync_directory(directory)

        written = [target.name for target, _, _ in writes]
        removed = [target.name for target in removals]
        result.update(
            changed=bool(created or written or removed), path=str(directory), written=written, removed=removed
        )
        if self._task.diff and diffs:
            result["diff"] = diffs
        return result
