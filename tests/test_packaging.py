"""pyproject.toml and environment.yml list the same runtime packages; the CLI entry point exists."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda's name -> PyPI's


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pypi = {_name(s) for s in project["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {
        CONDA_NAMES.get(_name(d), _name(d))
        for d in env["dependencies"]
        if isinstance(d, str) and _name(d) not in ("python", "pip")
    }
    assert conda == pypi, f"only in environment.yml: {conda - pypi}; only in pyproject.toml: {pypi - conda}"
    pip_part = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_part and any(".[test]" in x for x in pip_part[0]["pip"]), "environment.yml must install the package"


def test_ci_pins_a_cpu_installable_torch():
    pins = (ROOT / "requirements-ci.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", pins, re.M)


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["tp"] == "tplib.cli:main"
    from tplib.cli import main

    assert callable(main)
