"""The one module that runs suricata-update (as suricata.py owns the Suricata binary): threat-rule
sources, enable/disable filters, and the merged ruleset the engines load, with its version.

Everything lives under `<home>/rules/`; nothing is written to /etc or /var/lib/suricata:
  update.yaml                  suricata-update's config, written before every run
  enable.conf, disable.conf    the filters, one per line, as suricata-update reads them
  data/                        its data dir: update/sources/<name>.yaml, update/cache/ (downloads)
  folders/<name>.tar           a folder source packed for it; <name>.origin links to the folder
  suricata.rules, ruleset.json the installed merged ruleset and its version

Offline hosts, with suricata-update 1.3: every source is a URL source (`add-source NAME
file://...`). `--local` paths do not work alone: with no URL source, suricata-update adds ET Open
and fetches it (online) or stops (`--offline`: "Can't proceed offline"). It cannot fetch a
file:// URL naming a folder either, so a folder is packed into a tar file, again at every update.
Re-merges after `enable`/`disable`/`remove` run `--offline`, from its download cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import Settings
from ..errors import RulesetError
from . import suricata

RULES, STATE = "suricata.rules", "ruleset.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ACTION = r"(alert|drop|reject|rejectsrc|rejectdst|rejectboth|pass)\s"
_ENABLED, _DISABLED = re.compile(_ACTION), re.compile(r"#\s*" + _ACTION)
_SU_LINE = re.compile(r"<(Error|Critical|Warning)> -- (.*)")
_SID_SPEC = re.compile(r"(\d+:)?\d+")


@dataclass(frozen=True)
class Ruleset:
    """The installed merged ruleset. Its version: the day its content was installed and the
    start of its sha256."""

    path: Path
    sha256: str
    date: str
    enabled: int
    disabled: int

    @property
    def version(self) -> str:
        return f"{self.date}.{self.sha256[:12]}"

    def as_dict(self) -> dict:
        return {"version": self.version, "sha256": self.sha256, "date": self.date,
                "enabled": self.enabled, "disabled": self.disabled}


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    folder: Path | None  # a folder source: where it is packed from

    def as_dict(self) -> dict:
        return {"name": self.name, "url": self.url, "folder": None if self.folder is None else str(self.folder)}


def installed(settings: Settings) -> Ruleset | None:
    home = settings.rules_dir
    try:
        state = json.loads((home / STATE).read_text())
        ruleset = Ruleset(home / RULES, state["sha256"], state["date"], state["enabled"], state["disabled"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RulesetError(f"the record of the installed ruleset, {home / STATE}, cannot be read ({exc}): "
                           "`packettotal rules update` writes it again") from None
    if not ruleset.path.is_file():
        raise RulesetError(f"the installed ruleset {ruleset.path} is missing: "
                           "`packettotal rules update` merges it again")
    return ruleset


def sources(settings: Settings) -> list[Source]:
    found = []
    for path in sorted(_source_file(settings, "*").parent.glob("*.yaml")):
        try:
            conf = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RulesetError(f"suricata-update's source file {path} cannot be read: {exc}") from None
        name = str(conf.get("source", path.stem))
        origin = _folders(settings) / f"{name}.origin"
        found.append(Source(name, str(conf.get("url", "(from suricata-update's index)")),
                            Path(os.readlink(origin)) if origin.is_symlink() else None))
    return found


def filters(settings: Settings) -> dict[str, list[str]]:
    return {kind: _conf_lines(settings.rules_dir / f"{kind}.conf") for kind in ("enable", "disable")}


def update(settings: Settings) -> Ruleset:
    """Fetch every source again (with none, suricata-update's default: ET Open, online) and merge."""
    with _locked(settings):
        for source in sources(settings):
            if source.folder is not None:
                _pack(source.folder, _folders(settings) / f"{source.name}.tar")
        return _merge(settings, offline=False)


def add(settings: Settings, source: str, name: str | None = None) -> Ruleset:
    """Add a local source (a folder of .rules files, a .tar.gz or .rules file, a file:// URL) and
    merge. A source whose rules are refused is taken out again."""
    with _locked(settings):
        name = name or _default_name(source)
        if not _NAME.fullmatch(name):
            raise RulesetError(f"source name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)")
        if any(s.name == name for s in sources(settings)):
            raise RulesetError(f"there is already a source named {name!r}: give another with --name, or "
                               f"`packettotal rules remove {name}` first")
        try:
            url = _source_url(settings, source, name)
            _suricata_update(settings, "add-source", "--no-checksum", name, url)
            return _merge(settings, offline=False)
        except BaseException:
            _drop_source(settings, name)
            raise


def remove(settings: Settings, name: str) -> Ruleset | None:
    """Take a source out and merge the rest (offline; a refused merge puts it back); with none
    left, no threat ruleset is loaded."""
    with _locked(settings):
        if not any(s.name == name for s in sources(settings)):
            raise RulesetError(f"there is no source named {name!r}: `packettotal rules list` shows them")
        conf = _source_file(settings, name)
        kept = conf.read_text()
        conf.unlink()
        if not sources(settings):
            (settings.rules_dir / STATE).unlink(missing_ok=True)
            (settings.rules_dir / RULES).unlink(missing_ok=True)
            _drop_source(settings, name)
            return None
        try:
            ruleset = _merge(settings, offline=True)
        except BaseException:
            conf.write_text(kept)
            raise
        _drop_source(settings, name)
        return ruleset


def set_filter(settings: Settings, kind: str, spec: str) -> Ruleset:
    """`enable` or `disable` rules by `SID`, `GID:SID`, `group:NAME` (a source file, with or without
    .rules; wildcards as in suricata-update) or `re:REGEX` (over the rule's text), then re-merge
    offline. The same spec leaves the other file, so the last word counts; a refused merge
    puts both files back."""
    spec = _check_spec(spec)
    with _locked(settings):
        if installed(settings) is None:
            raise RulesetError("there is no ruleset to filter yet: `packettotal rules add SOURCE` or `rules update`")
        home = settings.rules_dir
        other = "disable" if kind == "enable" else "enable"
        before = {k: _read(home / f"{k}.conf") for k in (kind, other)}
        _edit(home / f"{other}.conf", spec, add=False)
        _edit(home / f"{kind}.conf", spec, add=True)
        try:
            return _merge(settings, offline=True)
        except BaseException:
            for k, text in before.items():
                _restore(home / f"{k}.conf", text)
            raise


def _check_spec(spec: str) -> str:
    spec = spec.strip()
    if _SID_SPEC.fullmatch(spec):
        return spec
    kind, _, value = spec.partition(":")
    if kind == "group" and value and value.isprintable() and not any(c.isspace() for c in value):
        return spec
    if kind == "re" and value and value.isprintable():
        try:
            re.compile(value)  # suricata-update matches with Python's re too
        except re.error as exc:
            raise RulesetError(f"re:{value}: not a regular expression ({exc})") from None
        return spec
    raise RulesetError(f"{spec!r} does not name rules: give a SID (2019401, or GID:SID), group:NAME "
                       "(a rules file, e.g. group:emerging-info) or re:REGEX")


def _merge(settings: Settings, *, offline: bool) -> Ruleset:
    home = settings.rules_dir
    binary = shutil.which(settings.suricata)
    if binary is None:
        raise RulesetError(f"cannot find Suricata ({settings.suricata}) to merge the rules for")
    with tempfile.TemporaryDirectory(dir=home, prefix="merge-") as tmp:
        work = Path(tmp)
        conf = work / "suricata.yaml"  # it drops rules for app-layer protocols ours turns off
        conf.write_text(suricata.render_config(settings, work / "none.rules", work))
        _suricata_update(settings, "update", "-o", str(work / "out"), "--no-test", "--no-reload", "--fail",
                         "--suricata", binary, "--suricata-conf", str(conf),
                         "--offline" if offline else "--now")  # --now: no 15-minute re-fetch guard
        merged = work / "out" / RULES
        if not merged.is_file():
            raise RulesetError("suricata-update finished without writing a merged ruleset")
        digest = _sha256(merged)
        current = installed(settings)
        if current is not None and current.sha256 == digest:
            return current
        refused = suricata.test_rules(settings, merged, work / "test")
        if refused:
            raise RulesetError("Suricata refused the merged ruleset (suricata -T); the installed one is "
                               "unchanged: " + " | ".join(refused))
        enabled, disabled = _counts(merged)
        os.replace(merged, home / RULES)
        state = {"sha256": digest, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                 "enabled": enabled, "disabled": disabled}
        (work / STATE).write_text(json.dumps(state))
        os.replace(work / STATE, home / STATE)
    ruleset = installed(settings)
    assert ruleset is not None
    return ruleset


def _suricata_update(settings: Settings, command: str, *args: str) -> None:
    home = settings.rules_dir
    empty = home / "no-dist-rules"  # Debian's protocol-event rules: the engines load them already
    empty.mkdir(exist_ok=True)
    config = {"disable-conf": str(home / "disable.conf"), "enable-conf": str(home / "enable.conf"),
              "dist-rule-directory": str(empty)}
    (home / "update.yaml").write_text(yaml.safe_dump(config))
    argv = [settings.suricata_update, command, "-c", str(home / "update.yaml"), "-D", str(home / "data"), *args]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=settings.rules_timeout, env={**os.environ, "TZ": "UTC"})
    except FileNotFoundError:
        raise RulesetError(f"suricata-update ({settings.suricata_update}) is not installed: "
                           "scripts/setup-system.sh installs it") from None
    except subprocess.TimeoutExpired:
        raise RulesetError(f"suricata-update {command} was stopped after {settings.rules_timeout:g} s "
                           "(setting rules_timeout)") from None
    if proc.returncode != 0:
        said = [f"{m.group(1)}: {m.group(2)}" for line in (proc.stderr + proc.stdout).splitlines()
                if (m := _SU_LINE.search(line)) and m.group(1) != "Warning"]
        said = said or (proc.stderr + proc.stdout).strip().splitlines()[-3:] or [f"exit code {proc.returncode}"]
        raise RulesetError(f"suricata-update {command} failed: "
                           + " | ".join(suricata.bounded(line) for line in said[:suricata.MAX_OUTPUT_LINES]))


def _source_url(settings: Settings, source: str, name: str) -> str:
    if source.startswith("file://"):
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(source).path))
        if not path.is_file():
            raise RulesetError(f"{source}: no such file (a file:// source names a .tar.gz or .rules file; "
                               "give a folder as a path)")
        return source
    if "://" in source:
        raise RulesetError(f"{source}: `rules add` takes a folder of .rules files, a .tar.gz or .rules file, "
                           "or a file:// URL; `packettotal rules update` fetches ET Open on an online host")
    path = Path(source).expanduser().resolve()
    if path.is_dir():
        if not any(path.glob("*.rules")):
            raise RulesetError(f"the folder {path} holds no .rules files")
        folders = _folders(settings)
        folders.mkdir(parents=True, exist_ok=True)
        origin = folders / f"{name}.origin"
        origin.unlink(missing_ok=True)
        origin.symlink_to(path)
        return _pack(path, folders / f"{name}.tar").as_uri()
    if path.is_file():
        if path.suffix != ".rules" and not tarfile.is_tarfile(path):
            raise RulesetError(f"{path} is neither a tar archive (.tar.gz) nor a .rules file")
        return path.as_uri()
    raise RulesetError(f"{source}: no such file or folder")


def _pack(folder: Path, dest: Path) -> Path:
    """The folder's .rules files (and classification.config) as one tar, for suricata-update."""
    if not folder.is_dir():
        raise RulesetError(f"the source folder {folder} is gone: `packettotal rules remove` it, or put it back")
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for path in sorted(folder.iterdir()):
            if path.is_file() and (path.suffix == ".rules" or path.name == "classification.config"):
                tar.add(path, arcname=path.name)
    os.replace(tmp, dest)
    return dest


def _source_file(settings: Settings, name: str) -> Path:  # suricata-update's record of a source
    return settings.rules_dir / "data" / "update" / "sources" / f"{name.replace('/', '-')}.yaml"


def _drop_source(settings: Settings, name: str) -> None:
    _source_file(settings, name).unlink(missing_ok=True)
    for suffix in (".tar", ".origin"):
        (_folders(settings) / f"{name}{suffix}").unlink(missing_ok=True)


def _default_name(source: str) -> str:
    base = Path(urllib.parse.urlparse(source).path if "://" in source else source).expanduser().resolve().name
    for suffix in (".gz", ".tgz", ".tar", ".rules"):
        base = base.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base).strip(".-_")[:64] or "local"


def _folders(settings: Settings) -> Path:
    return settings.rules_dir / "folders"


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    settings.rules_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.rules_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RulesetError("another `packettotal rules` command is changing the ruleset: try again "
                               "when it has finished") from None
        yield


def _counts(path: Path) -> tuple[int, int]:
    enabled = disabled = 0
    with open(path, errors="replace") as f:
        for line in f:
            enabled += bool(_ENABLED.match(line))
            disabled += bool(_DISABLED.match(line))
    return enabled, disabled


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _conf_lines(path: Path) -> list[str]:
    return [s for line in (_read(path) or "").splitlines() if (s := line.strip()) and not s.startswith("#")]


def _edit(path: Path, spec: str, *, add: bool) -> None:
    """Take the spec's lines out of a filter file (the rest as written), and add it at the end."""
    text = _read(path)
    lines = [line for line in (text or "").splitlines() if line.strip() != spec] + ([spec] if add else [])
    if lines or text is not None:
        path.write_text("".join(f"{line}\n" for line in lines))


def _restore(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(text)
