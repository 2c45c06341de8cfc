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


def _check(args: dict[str, Any]) -> None:
    """Refuse bad input before anything is written, naming the option and what it allows."""
    if not Path(args["path"]).is_absolute():
        raise AnsibleActionFail(f"file_tree: path must be absolute, got {args['path']!r}")
    for option in ("mode", "directory_mode"):
        if not MODE.match(args[option]):
            raise AnsibleActionFail(f"file_tree: {option} must be an octal mode such as 0644, got {args[option]!r}")
    bad = sorted(name for name in args["files"] if not isinstance(name, str) or not NAME.match(name))
    if bad:
        raise AnsibleActionFail(
            "file_tree: files keys must be plain file names (no '/', not starting with '.'),"
            f" got {', '.join(map(repr, bad))}"
        )
    not_text = sorted(name for name, content in args["files"].items() if not isinstance(content, str))
    if not_text:
        raise AnsibleActionFail(f"file_tree: files values must be text; not text: {', '.join(not_text)}")


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
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
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
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        _check(args)

        directory = Path(os.path.normpath(args["path"]))  # normpath: no symlink resolution
        file_mode = int(args["mode"], 8)
        check_mode = bool(self._task.check_mode)
        diffs: list[dict[str, Any]] = []
        written: list[str] = []
        removed: list[str] = []

        created = not directory.is_dir()
        if created and (directory.exists() or directory.is_symlink()):
            raise AnsibleActionFail(f"file_tree: path {directory} exists and is not a directory")
        if created and not check_mode:
            directory.mkdir(mode=int(args["directory_mode"], 8), parents=True, exist_ok=True)

        for name in sorted(args["files"]):
            target = directory / name
            data = to_bytes(args["files"][name], errors="surrogate_or_strict")
            before, before_mode = (None, None) if created else _current(target)
            if before == data and before_mode == file_mode:
                continue
            written.append(name)
            diffs.append(
                {
                    "before_header": str(target),
                    "after_header": str(target),
                    "before": "" if before is None else to_text(before, errors="surrogate_or_replace"),
                    "after": args["files"][name],
                }
            )
            if check_mode:
                continue
            if before == data:
                target.chmod(file_mode)
            else:
                _write_atomically(target, data, file_mode)

        if not created:
            for target in sorted(directory.iterdir()):
                entry = target.name
                if entry in args["files"] or not any(fnmatch.fnmatchcase(entry, p) for p in args["prune"]):
                    continue
                if not (target.is_symlink() or target.is_file()):
                    continue
                removed.append(entry)
                diffs.append(
                    {
                        "before_header": str(target),
                        "after_header": str(target),
                        "before": "(present)\n",
                        "after": "(absent)\n",
                    }
                )
                if not check_mode:
                    target.unlink()

        if (written or removed) and not check_mode:
            _sync_directory(directory)

        result.update(
            changed=bool(created or written or removed), path=str(directory), written=written, removed=removed
        )
        if self._task.diff and diffs:
            result["diff"] = diffs
        return result
