"""The README keeps up with the code: every API route and every CLI command is documented there
(Datasette's documentation test; the settings table is checked in test_config.py)."""

import re
from pathlib import Path

import click
import pytest

from packettotal import cli
from packettotal.web.app import create_app

from .conftest import settings
from .web import app_routes

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert m, f"README has no section {title!r}"
    return m.group(1)


def api_paths(tmp_path) -> set[str]:
    app = create_app(settings(tmp_path), seed_demo=False)
    try:
        return {re.sub(r"\{(\w+)(:\w+)?}", r"{\1}", r.path).replace("{ref}", "{id}")
                for r in app_routes(app) if r.path.startswith("/api/v1/") and not r.path.endswith("openapi.json")}
    finally:
        app.state.instance.stop()


def test_every_api_route_is_in_the_readme(tmp_path):
    documented = section("REST API")
    missing = sorted(p for p in api_paths(tmp_path) if f"`{p}`" not in documented and f" {p}`" not in documented)
    assert not missing, f"routes missing from README's REST API table: {missing}"


@pytest.mark.parametrize("name", sorted(cli.cli.commands))
def test_every_cli_command_is_in_the_readme(name):
    assert isinstance(cli.cli.commands[name], click.Command)
    assert re.search(rf"^packettotal {re.escape(name)}\b", section("The command line"), re.M), \
        f"`packettotal {name}` is not in README's command-line section"
