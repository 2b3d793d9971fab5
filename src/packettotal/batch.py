"""What `packettotal analyze` is given, made into the files to submit: folders walked (a file in
one is taken when its content is a capture's, else skipped with the reason) and `--label`s read."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import QueryError
from .ingest.validate import not_a_capture
from .query.fields import LABEL_KINDS


@dataclass
class Batch:
    files: list[Path] = field(default_factory=list)  # in the order given, folders' files sorted
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # a folder's file, and why


def expand(paths: Iterable[Path]) -> Batch:
    """Files given are taken as they are (a refusal is their result); folders are walked, their
    symbolic links to folders not followed."""
    out = Batch()
    for p in paths:
        if not p.is_dir():
            out.files.append(p)
            continue
        for root, dirs, names in os.walk(p):
            dirs.sort()
            for name in sorted(names):
                f = Path(root, name)
                why = "not a regular file" if not f.is_file() else not_a_capture(f)
                if why is None:
                    out.files.append(f)
                else:
                    out.skipped.append((f, why))
    return out


def parse_label(text: str) -> tuple[str, str]:
    """`KIND:VALUE` (family:Emotet, tag:"spring run") -> (kind, value); raises QueryError."""
    kind, sep, value = text.partition(":")
    kind, value = kind.strip().lower(), " ".join(value.split())
    if not sep or kind not in LABEL_KINDS:
        raise QueryError(f"a label is KIND:VALUE with KIND one of {', '.join(LABEL_KINDS)}, not {text[:60]!r}")
    if not value or len(value) > 100 or not value.isprintable():  # as the service takes them
        raise QueryError(f"a label's value is 1 to 100 printable characters, not {value[:60]!r}")
    return kind, value
