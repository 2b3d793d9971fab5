"""Settings declared once: name, default, help, constraint. Layered defaults -> TOML file -> env -> overrides."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import sys
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

import platformdirs

from .errors import ConfigError

ENV_PREFIX = "PACKETTOTAL_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"

Check = Callable[[typing.Any], str | None]  # what is wrong with a value of the right type, or None


def at_least(low: int) -> Check:
    return lambda v: None if v >= low else f"must be at least {low}, not {v}"


def positive(v: float) -> str | None:
    return None if math.isfinite(v) and v > 0 else f"must be a number above 0, not {v}"


def not_blank(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be {' or '.join(choices)}, not {v!r}"


def matches(pattern: str, shape: str) -> Check:
    regex = re.compile(pattern)
    return lambda v: None if regex.fullmatch(v) else f"must be {shape}, not {v!r}"


_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")  # length apart: {1,63} takes 4 ms to compile


def _is_host(entry: str) -> bool:
    if entry == "*":
        return True
    name = entry.removeprefix("*.")
    if name == entry:
        try:
            ipaddress.ip_address(entry)
            return True
        except ValueError:
            pass
    labels = name.removesuffix(".").split(".")
    return len(name) <= 253 and all(len(b) <= 63 and _HOST_LABEL.fullmatch(b) for b in labels)


def host_list(v: str) -> str | None:
    bad = [h for h in (e.strip() for e in v.split(",")) if not _is_host(h)]
    if bad:
        return ("must be host names or addresses separated by commas ('*': any, '*.example.com': "
                f"that domain's hosts; no scheme or port), not {bad[0]!r}")
    return None


def database_url(v: str) -> str | None:
    if not v or re.match(r"sqlite:///.+|postgresql(\+psycopg)?://[^/]+/[^/?#]+", v):
        return None
    return "must be sqlite:///PATH or postgresql://user:password@host[:port]/name, or empty"


def masked_url(url: str) -> str:
    """A URL with the password of its user:password@ part replaced by ***."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)[^/]*@", r"\1***@", url, flags=re.I)


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("packettotal", appauthor=False))


def _default_geo_dir() -> Path:  # where scripts/setup-geo.sh installs (make setup)
    return Path(sys.prefix) / "share" / "packettotal" / "geo"


def _where(source: str | None) -> str:
    return "" if source is None else " (default)" if source == "default" else f" (from {source})"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home,
                       metadata={"help": "Data folder: database, event index, blobs"})
    max_upload_bytes: int = field(default=1 << 30, metadata={
        "help": "Largest capture accepted, after decompression (bytes)", "check": at_least(1)})
    max_decompression_ratio: float = field(default=500.0, metadata={
        "help": "A compressed upload that grows more than this many times (judged once 16 MiB have come "
                "out) is refused as a decompression bomb", "check": positive})
    max_packets_per_capture: int = field(default=5_000_000, metadata={
        "help": "Packets (records) one capture may hold; a capture with more is refused", "check": at_least(1)})
    max_validations: int = field(default=2, metadata={
        "help": "Uploads checked (decompressed, hashed, walked) at once; others wait up to 60 s for a turn",
        "check": at_least(1)})
    max_events_per_capture: int = field(default=2_000_000, metadata={
        "help": "EVE records indexed per capture; the rest are counted, not indexed", "check": at_least(0)})
    max_observables_per_capture: int = field(default=250_000, metadata={
        "help": "Distinct observables (IPs, domains, hashes, ...) recorded per capture; memory follows "
                "them: values first seen past the limit are counted, not recorded", "check": at_least(1)})
    max_string_bytes: int = field(default=4096, metadata={
        "help": "Longest string kept from any EVE field (bytes); longer ones are cut and marked",
        "check": at_least(64)})  # a sha256 in hex is never cut
    engines: int = field(default=max(1, min(2, os.cpu_count() or 1)), metadata={
        "help": "Long-lived Suricata daemons (one per core is best); 0: none, a web-only node (only with "
                "broker_url set: its workers analyse)", "check": at_least(0)})
    engine_timeout: float = field(default=900.0, metadata={
        "help": "Seconds one capture may take in Suricata before the daemon is killed", "check": positive})
    engine_log_bytes: int = field(default=1 << 20, metadata={
        "help": "Largest size of each daemon's suricata.log and stderr.log (bytes); past it the last "
                "part is kept as a .1 file and the log starts again", "check": at_least(4096)})
    suricata: str = field(default="suricata", metadata={"help": "Suricata binary", "check": not_blank})
    suricata_user: str = field(default="packettotal-suricata", metadata={
        "help": "When PacketTotal runs as root, Suricata (which parses attacker-controlled captures) runs "
                "as this unprivileged account, created by the set-up; empty: as root",
        "check": matches(r"([A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)?", "an account name or empty")})
    suricata_rules_dir: Path = field(default=Path("/etc/suricata/rules"), metadata={
        "help": "Folder of Suricata's own protocol-event rules"})
    allowed_hosts: str = field(default="localhost,127.0.0.1", metadata={
        "help": "Host names the web service answers to, comma-separated ('*': any); guards against "
                "DNS rebinding. `serve --host` adds the address it listens on", "check": host_list})
    max_body_bytes: int = field(default=3 << 20, metadata={
        "help": "Largest request body other than a capture upload (JSON, forms), in bytes; refused with "
                "413 while it is read. 1,000 indicators of 2,048 characters fit", "check": at_least(1)})
    body_timeout: float = field(default=20.0, metadata={
        "help": "Seconds a request body (uploads included) may pause, and its grace before body_min_rate "
                "applies; a slower body gets 408 and its connection is closed", "check": positive})
    body_min_rate: int = field(default=500, metadata={
        "help": "Bytes a second a request body must average after its body_timeout grace", "check": at_least(1)})
    header_timeout: float = field(default=10.0, metadata={
        "help": "Seconds a client has to send a request's headers (`serve`); then the connection is closed",
        "check": positive})
    labelling: str = field(default="anyone", metadata={
        "help": "Who may add and remove labels: anyone (who can reach the instance) or nobody",
        "check": one_of("anyone", "nobody")})
    user_rules_dir: Path | None = field(default=None, metadata={
        "help": "Extra folder of *.rules files, loaded as they are; empty: none"})
    suricata_update: str = field(default="suricata-update", metadata={
        "help": "suricata-update binary, which manages the threat rulesets (`packettotal rules`)",
        "check": not_blank})
    rules_timeout: float = field(default=900.0, metadata={
        "help": "Seconds one suricata-update run, or one `suricata -T` check of a merged ruleset, may take",
        "check": positive})
    rules_reload_seconds: float = field(default=10.0, metadata={
        "help": "How often `serve` looks for changed rules (`packettotal rules`, user_rules_dir): they are "
                "loaded into new daemons while the old ones serve, then swapped in; 0: only at start",
        "check": at_least(0)})
    events_backend: str = field(default="tantivy", metadata={
        "help": "Event index: tantivy (embedded, in the home folder) or opensearch (a server: events_url)",
        "check": one_of("tantivy", "opensearch")})
    query_seconds: float = field(default=10.0, metadata={
        "help": "Longest a costly query (wildcards, field existence) may run: it runs in a child process "
                "that is stopped then, and the request answers 503; 0: no limit, run in-process",
        "check": at_least(0)})
    yara_rules_dir: Path | None = field(default=None, metadata={
        "help": "Folder of YARA rules (*.yar, *.yara, subfolders too; no includes) run on every carved file; "
                "compiled again when its files change; empty: no YARA"})
    yara_timeout: int = field(default=10, metadata={
        "help": "Seconds YARA may spend on one carved file; then the file is marked timed out",
        "check": at_least(1)})
    yara_max_bytes: int = field(default=64 << 20, metadata={
        "help": "Largest carved file YARA scans (bytes); a larger one is marked not scanned", "check": at_least(1)})
    geo_data_dir: Path | None = field(default_factory=_default_geo_dir, metadata={
        "help": "Folder of the offline address data (country and AS of IPs; scripts/setup-geo.sh installs it); "
                "empty: no enrichment"})
    intel_max_bytes: int = field(default=64 << 20, metadata={
        "help": "Largest IOC feed imported (bytes): a file, an upload, or what a feed's URL sends",
        "check": at_least(1)})
    intel_fetch_timeout: float = field(default=30.0, metadata={
        "help": "Seconds the fetch of an IOC feed from a URL may take (connecting, each pause, and in all)",
        "check": positive})
    ndpi: str = field(default="auto", metadata={
        "help": "nDPI (libndpi, Debian's libndpi4.2) as a second engine beside Suricata: each flow's "
                "application, category and risks. auto: when libndpi is installed; on: always (a capture "
                "without it gets a warning); off: never", "check": one_of("auto", "on", "off")})
    rare_domain_baseline: int = field(default=20, metadata={
        "help": "Earlier captures holding domains the instance needs before it names a capture's domains new "
                "to it (finding rare_domain); fewer: the finding is not made", "check": at_least(1)})
    rare_domain_below: int = field(default=1, metadata={
        "help": "A registered domain held by fewer than this many earlier captures is rare (finding "
                "rare_domain); 1: only those no earlier capture held", "check": at_least(1)})
    mode: str = field(default="single", metadata={
        "help": "Who may do what (README: Accounts and modes). single: no accounts, whoever reaches the "
                "instance does everything (loopback only, unless `serve --allow-single`); team: a login or an "
                "API key for everything; public: anonymous users read, accounts do the rest",
        "check": one_of("single", "team", "public")})
    public_uploads: str = field(default="off", metadata={
        "help": "In public mode, whether anonymous users may upload captures: on or off",
        "check": one_of("on", "off")})
    secure_cookies: str = field(default="auto", metadata={
        "help": "Session cookies marked Secure (sent over TLS only). auto: when the request came over TLS; "
                "always: also behind a proxy that ends TLS", "check": one_of("auto", "always")})
    session_hours: float = field(default=12.0, metadata={
        "help": "Hours a web login lasts", "check": positive})
    login_max_failures: int = field(default=5, metadata={
        "help": "Failed logins, per account and per client address, within login_window_seconds before "
                "further tries are refused (429)", "check": at_least(1)})
    login_window_seconds: float = field(default=900.0, metadata={
        "help": "The window over which failed logins are counted", "check": positive})
    events_url: str = field(default="", metadata={
        "help": "With events_backend opensearch: http(s)://[user:password@]host[:port][/index] of the server "
                "(options ?ca_certs=PATH&client_cert=PATH&client_key=PATH&verify_certs=false); empty: none"})
    requests_per_minute: int = field(default=0, metadata={
        "help": "Requests one API key may make in any 60 seconds; more get 429 with Retry-After (0: no limit)",
        "check": at_least(0)})
    uploads_per_day: int = field(default=0, metadata={
        "help": "Captures one user (or a key of its own) may upload per UTC day; more get 429 (0: no limit)",
        "check": at_least(0)})
    upload_bytes_per_day: int = field(default=0, metadata={
        "help": "Bytes of uploads one user (or a key of its own) may send per UTC day: an upload larger than "
                "what is left gets 413, any once none is left 429 (0: no limit)", "check": at_least(0)})
    usage_flush_seconds: float = field(default=5.0, metadata={
        "help": "How often the counts of key use and uploads kept in memory are written to the database "
                "(and at shutdown)", "check": positive})
    trusted_proxies: str = field(default="", metadata={
        "help": "Addresses or networks (comma-separated; * for any) of the reverse proxies in front of `serve`: "
                "from them, the client's address is read from X-Forwarded-For and the scheme from "
                "X-Forwarded-Proto (login limits, audit, Secure cookies); empty: the headers are ignored"})
    database_url: str = field(default="", metadata={
        "help": "The relational database: sqlite:///PATH or postgresql://user:password@host[:port]/name "
                "(README: Scaling out: PostgreSQL); empty: the SQLite file in the home folder",
        "check": database_url})
    blob_root: Path | None = field(default=None, metadata={
        "help": "Folder of the stored captures and carved files, shared by the nodes of one instance; "
                "empty: the home folder's blobs"})
    broker_url: str = field(default="", metadata={
        "help": "redis://host:port/db of the Celery broker: captures are analysed by `packettotal worker` "
                "processes (empty: in-process, by serve itself)",
        "check": lambda v: None if v == "" or v.startswith(("redis://", "rediss://"))
        else f"must be empty or a redis:// URL, not {v!r}"})
    audit_days: int = field(default=365, metadata={
        "help": "Days the audit log keeps a row: older ones are deleted at start and daily (0: kept for ever)",
        "check": at_least(0)})
    # where each value came from: "default", "file <path>", "environment PACKETTOTAL_<NAME>", ...
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:  # every problem at once, each naming where its value came from
        problems = []
        for f in SETTINGS:
            value = getattr(self, f.name)
            problem = _type_problem(value, *_KINDS[f.name]) or (
                None if value is None or "check" not in f.metadata else f.metadata["check"](value))
            if problem:
                where = _where(self.sources.get(f.name))
                problems.append(f"setting {f.name}{where}: {problem}")
        if self.engines == 0 and not self.broker_url:  # a web-only node: Celery workers analyse
            problems.append(f"setting engines{_where(self.sources.get('engines'))}: must be at least 1 "
                            "(0 only on a web node with broker_url set), not 0")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def db_path(self) -> Path:
        return self.home / "packettotal.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.home / "events"

    @property
    def blob_dir(self) -> Path:
        return self.blob_root or self.home / "blobs"

    @property
    def database(self) -> str:
        """The database's URL: database_url, or the home folder's SQLite file."""
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def longest_analysis(self) -> float:
        """Seconds past which an analysis is surely over (a daemon is killed at engine_timeout and
        a capture tried twice at most): the broker redelivers, the spool sweeps, only after it."""
        return self.engine_timeout * 2 + 600

    @property
    def spool_dir(self) -> Path:
        """Where analyses wait for the process holding the event index (store/events/spool.py)."""
        return self.home / "spool"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @property
    def rules_dir(self) -> Path:  # suricata-update's data, config and output (ingest/rules.py)
        return self.home / "rules"


SETTINGS = tuple(f for f in fields(Settings) if f.name != "sources")
SETTINGS_HELP = {f.name: f.metadata.get("help", "") for f in SETTINGS}
_TYPE_NAMES = {int: "a whole number", float: "a number", str: "text", Path: "a non-empty path"}


def _kind(hint: typing.Any) -> tuple[typing.Any, bool]:
    """(type, whether None is allowed) of a setting's annotation."""
    args = typing.get_args(hint)
    return (next(a for a in args if a is not type(None)), True) if type(None) in args else (hint, False)


_KINDS = {name: _kind(hint) for name, hint in typing.get_type_hints(Settings).items() if name in SETTINGS_HELP}


def _type_problem(value: object, kind: type, optional: bool) -> str | None:
    if value is None and optional:
        return None
    allowed = (int, float) if kind is float else kind
    if isinstance(value, allowed) and not isinstance(value, bool):
        return None
    return f"must be {_TYPE_NAMES[kind]}, not {value!r}"


def _coerce(name: str, raw: object) -> object:
    """The value as its setting's type when it converts; otherwise as given, for the check to name."""
    kind, optional = _KINDS[name]
    if kind is Path and isinstance(raw, str | os.PathLike):
        text = os.fspath(raw)
        if not text.strip():
            return None if optional else text
        return Path(text).expanduser()
    if isinstance(raw, str) and kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            return raw
    if kind is float and type(raw) is int:
        return float(raw)
    return raw


def _nearest(name: str, known: typing.Iterable[str]) -> str | None:
    import difflib  # imported only for a name that is not a setting: ~10 ms of every command otherwise
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return found[0] if found else None


TEST_ENV_PREFIX = ENV_PREFIX + "TEST_"  # the test-suite's own variables (tests/conftest.py), not settings


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = [*SETTINGS_HELP, "config"]
    for key in sorted(env):
        if key.upper().startswith(ENV_PREFIX) and key not in [ENV_PREFIX + n.upper() for n in known] \
                and not key.startswith(TEST_ENV_PREFIX):
            near = _nearest(key[len(ENV_PREFIX):].lower(), known)
            hint = f"did you mean {ENV_PREFIX}{near.upper()}?" if near else "`packettotal config` lists them"
            import logging  # as difflib: light commands do not otherwise load it
            logging.getLogger("packettotal").warning("environment variable %s is not a setting (%s); ignored",
                                                     key, hint)


def _read_file(config_file: Path, where: str) -> dict[str, object]:
    try:
        data = tomllib.loads(Path(config_file).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {config_file}{where}: {exc}") from None
    for key in data:
        if key not in SETTINGS_HELP:
            near = _nearest(key, SETTINGS_HELP)
            raise ConfigError(f"config file {config_file}: {key!r} is not a setting"
                              + (f" (did you mean {near}?)" if near else ""))
    return data


def load(config_file: Path | None = None, env: Mapping[str, str] | None = None, *,
         origin: str = "override", **overrides: object) -> Settings:
    """Build settings: defaults, then the TOML file, then PACKETTOTAL_<NAME> variables, then
    `overrides` (None: not given). `sources` records where each value came from: "default",
    "file <path>", "environment PACKETTOTAL_<NAME>" or `origin` (the CLI says "command line").
    A bad value is a ConfigError naming the setting and its source; an environment variable
    that is not a setting is a warning naming the nearest one."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    sources = dict.fromkeys(SETTINGS_HELP, "default")
    where = ""
    if config_file is None and CONFIG_ENV in env:
        if not env[CONFIG_ENV].strip():
            raise ConfigError(f"environment {CONFIG_ENV} is empty: name a TOML file or unset it")
        config_file, where = Path(env[CONFIG_ENV]), f" (from environment {CONFIG_ENV})"
    if config_file:
        for name, value in _read_file(config_file, where).items():
            values[name], sources[name] = value, f"file {config_file}"
    for name in SETTINGS_HELP:
        if ENV_PREFIX + name.upper() in env:
            values[name], sources[name] = env[ENV_PREFIX + name.upper()], f"environment {ENV_PREFIX}{name.upper()}"
    _warn_unknown_env(env)
    for name, value in overrides.items():
        if name not in SETTINGS_HELP:
            raise ConfigError(f"{name!r} is not a setting")
        if value is not None:
            values[name], sources[name] = value, origin
    coerced: dict[str, typing.Any] = {k: _coerce(k, v) for k, v in values.items()}  # Settings checks each type
    return Settings(**coerced, sources=MappingProxyType(sources))


class SettingRow(typing.TypedDict):
    setting: str
    value: object
    source: str
    help: str


def describe(settings: Settings) -> list[SettingRow]:
    """One row per setting: name, value (a URL's password as ***), where it came from, help."""
    return [{"setting": name, "value": _shown_value(name, getattr(settings, name)),
             "source": settings.sources.get(name, "default"), "help": text}
            for name, text in SETTINGS_HELP.items()]


def _shown_value(name: str, value: object) -> object:
    return masked_url(value) if name.endswith("_url") and isinstance(value, str) else value
