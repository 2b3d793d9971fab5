"""Settings declared once: name, default, help. Layered defaults -> TOML file -> env -> overrides."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

from .errors import ConfigError

ENV_PREFIX = "PACKETTOTAL_"


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("packettotal", appauthor=False))


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home,
                       metadata={"help": "Data folder: database, event index, blobs"})
    max_upload_bytes: int = field(default=1 << 30, metadata={
        "help": "Largest capture accepted, after decompression (bytes)"})
    max_decompression_ratio: float = field(default=500.0, metadata={
        "help": "A compressed upload that grows more than this many times (judged once 16 MiB have come "
                "out) is refused as a decompression bomb"})
    max_packets_per_capture: int = field(default=5_000_000, metadata={
        "help": "Packets (records) one capture may hold; a capture with more is refused"})
    max_validations: int = field(default=2, metadata={
        "help": "Uploads checked (decompressed, hashed, walked) at once; others wait up to 60 s for a turn"})
    max_events_per_capture: int = field(default=2_000_000, metadata={
        "help": "EVE records indexed per capture; the rest are counted, not indexed"})
    max_string_bytes: int = field(default=4096, metadata={
        "help": "Longest string kept from any EVE field (bytes); longer ones are cut and marked"})
    engines: int = field(default=max(1, min(2, os.cpu_count() or 1)), metadata={
        "help": "Long-lived Suricata daemons (one per core is best)"})
    engine_timeout: float = field(default=900.0, metadata={
        "help": "Seconds one capture may take in Suricata before the daemon is killed"})
    engine_log_bytes: int = field(default=1 << 20, metadata={
        "help": "Largest size of each daemon's suricata.log and stderr.log (bytes); past it the last "
                "part is kept as a .1 file and the log starts again"})
    suricata: str = field(default="suricata", metadata={"help": "Suricata binary"})
    suricata_user: str = field(default="packettotal-suricata", metadata={
        "help": "When PacketTotal runs as root, Suricata (which parses attacker-controlled captures) runs "
                "as this unprivileged account, created by the set-up; empty: as root"})
    suricata_rules_dir: Path = field(default=Path("/etc/suricata/rules"), metadata={
        "help": "Folder of Suricata's own protocol-event rules"})
    allowed_hosts: str = field(default="localhost,127.0.0.1", metadata={
        "help": "Host names the web service answers to, comma-separated ('*': any); guards against "
                "DNS rebinding. `serve --host` adds the address it listens on"})
    labelling: str = field(default="anyone", metadata={
        "help": "Who may add and remove labels: anyone (who can reach the instance) or nobody"})
    user_rules_dir: Path | None = field(default=None, metadata={
        "help": "Extra folder of *.rules files (for example ET Open from suricata-update)"})

    def __post_init__(self) -> None:
        if self.labelling not in ("anyone", "nobody"):
            raise ConfigError(f"setting labelling: anyone or nobody, not {self.labelling!r}")

    @property
    def db_path(self) -> Path:
        return self.home / "packettotal.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.home / "events"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"


SETTINGS_HELP = {f.name: f.metadata.get("help", "") for f in fields(Settings)}


def _coerce(name: str, raw: object) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if "Path" in str(kind):
            return Path(str(raw)).expanduser() if raw not in (None, "") else None
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot use {raw!r} ({exc})") from None


def load(config_file: Path | None = None, env: dict[str, str] | None = None,
         **overrides: object) -> Settings:
    """Build settings; `sources` records where each non-default value came from."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    config_file = config_file or (Path(env[ENV_PREFIX + "CONFIG"]) if ENV_PREFIX + "CONFIG" in env else None)
    if config_file:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from None
        unknown = set(data) - set(SETTINGS_HELP)
        if unknown:
            raise ConfigError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in data.items()})
    for name in SETTINGS_HELP:
        if ENV_PREFIX + name.upper() in env:
            values[name] = _coerce(name, env[ENV_PREFIX + name.upper()])
    values.update({k: _coerce(k, v) for k, v in overrides.items() if v is not None})
    return Settings(**values)
