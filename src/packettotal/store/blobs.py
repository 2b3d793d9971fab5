"""Content-addressed blob folder: <root>/<kind>/<sha256[:2]>/<sha256>."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

from ..errors import NotFound

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def open_regular(path: Path) -> BinaryIO:
    """Open for reading a file another account wrote (Suricata's): never through a symbolic link
    in its place (it could point at a file only root may read), and only a regular file (a FIFO
    would block the reader)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return os.fdopen(fd, "rb")


class Blobs:
    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, sha256: str) -> Path:
        if not _SHA256.match(sha256):  # the only way a name reaches the filesystem
            raise NotFound(f"not a sha256: {sha256[:80]!r}")
        return self.root / kind / sha256[:2] / sha256

    def has(self, kind: str, sha256: str) -> bool:
        return self.path(kind, sha256).exists()

    def put_move(self, kind: str, sha256: str, src: Path) -> Path:
        """Move src into place (same filesystem rename); a blob already there is kept."""
        dest = self.path(kind, sha256)
        if dest.exists():
            src.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex}")
        if os.lstat(src).st_uid == os.geteuid():
            shutil.move(src, tmp)
        else:  # written by Suricata's unprivileged account: copied (never through a link) into a file of ours
            with open_regular(src) as f, open(tmp, "xb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
            os.unlink(src)
        os.replace(tmp, dest)
        return dest

    def remove(self, kind: str, sha256: str) -> None:
        self.path(kind, sha256).unlink(missing_ok=True)

    def open(self, kind: str, sha256: str):
        p = self.path(kind, sha256)
        if not p.exists():
            raise NotFound(f"no {kind} blob {sha256}")
        return open(p, "rb")
