"""Helpers of the workflow: the configured runs, each run's `tp train --set` arguments, the raw-data check.

Everything here runs when Snakemake parses the workflow, so a bad config value, an unknown `--set` key or a
missing raw file stops the workflow before any job starts, with one message naming the key or the files. The
workflow imports tplib (never the reverse): the config's hyperparameters are checked by tplib.config, and the
raw files are looked up where tplib.data.sources looks for them.
"""

import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tplib import grid
from tplib.config import BACKBONES, ConfigError, build_config, parse_sets
from tplib.data.dataset import DataError
from tplib.data.sources import SOURCES, resolve_raw
from tplib.grid import parse_spec, run_dir

validate(config, "../schemas/config.schema.yaml")

# Jobs find `tp` on the PATH; where none is there (Snakemake run from a virtual environment that is not
# activated), they use the one beside the Python that runs Snakemake, the environment that parsed this file.
# Appended, so an activated environment (or --use-conda's) still comes first.
shell.prefix(
    f'set -euo pipefail; export PATH="$PATH":{shlex.quote(str(Path(sys.executable).parent))}; '
)

RESOURCES_RAW = "resources/raw"  # where `download: true` puts raw files
MANAGED_KEYS = {
    "tp.k": "the run's folder (tp/k{k}_lam{lam}); set tp_default or ablation instead",
    "tp.lam": "the run's folder (tp/k{k}_lam{lam}); set tp_default or ablation instead",
    "train.device": "the top-level `device` key",
    "train.threads": "the rule's threads (profiles: set-threads)",
}

# ---------------------------------------------------------------------------------------------------------
# The runs (tplib.grid: the same list benchmarks/grid_cost.py prices)


def all_runs():
    return grid.all_runs(config)


def run_dirs():
    return [run_dir(r) for r in all_runs()]


def run_files(name):
    """One file of every configured run, e.g. run_files('metrics.json')."""
    return [f"{run_dir(r)}/{name}" for r in all_runs()]


def train_benchmarks():
    return [
        f"results/benchmarks/train/{r.dataset}/{r.backbone}/{r.spec}/seed{r.seed}.tsv"
        for r in all_runs()
    ]


def used_datasets():
    return list(dict.fromkeys(r.dataset for r in all_runs()))


def dataset_files(name):
    return [f"results/data/{d}/{name}" for d in used_datasets()]


# ---------------------------------------------------------------------------------------------------------
# `tp train --set` arguments


def run_sets(dataset, backbone, method):
    return grid.run_sets(config, dataset, backbone, method)


def device_sets():
    return [f"train.device={config['device']}"]


def train_sets(wildcards):
    """All `--set` arguments of a training job but train.threads (the shell adds it from {threads})."""
    method, k, lam = parse_spec(wildcards.spec)
    sets = run_sets(wildcards.dataset, wildcards.backbone, method) + device_sets()
    if method == "tp":
        sets += [f"tp.k={k}", f"tp.lam={lam}"]
    return " ".join(f"--set {shlex.quote(s)}" for s in sets)


def spec_method(wildcards):
    return parse_spec(wildcards.spec)[0]


DEVICE_GPUS = 1 if config["device"].startswith("cuda") else 0


def check_overrides():
    """Check the `--set` overrides with tplib.config now, so that an unknown key or a bad value stops the
    workflow before any job, naming the key: each mapping on its own first (the message names where it is),
    then every configured (dataset, backbone, method) combination (e.g. model.d not divisible by n_heads).
    """
    problems = []
    ov = config["overrides"]
    parts = [("overrides.all", "sasrec", "baseline", ov["all"])]
    parts += [
        (f"overrides.datasets.{d}", "sasrec", "baseline", s)
        for d, s in ov["datasets"].items()
    ]
    parts += [
        (f"overrides.backbones.{b}", b, "baseline", s)
        for b, s in ov["backbones"].items()
    ]
    parts += [
        (f"overrides.methods.{m}", "sasrec", m, s) for m, s in ov["methods"].items()
    ]
    for where, backbone, method, sets in parts:
        managed = [k for k in sets if k in MANAGED_KEYS]
        for key in managed:
            problems.append(
                f"{where}: {key} is set by the workflow from {MANAGED_KEYS[key]}"
            )
        if managed:
            continue
        try:
            build_config(
                backbone,
                method,
                0,
                "",
                parse_sets([f"{k}={grid.fmt_value(v)}" for k, v in sets.items()]),
            )
        except ConfigError as e:
            problems.append(f"{where}: {e}")
    if not problems:
        combos = dict.fromkeys(
            (r.dataset, r.backbone, parse_spec(r.spec)) for r in all_runs()
        )
        for dataset, backbone, (method, k, lam) in combos:
            sets = run_sets(dataset, backbone, method) + device_sets()
            if method == "tp":
                sets += [f"tp.k={k}", f"tp.lam={lam}"]
            try:
                build_config(backbone, method, 0, dataset, parse_sets(sets))
            except ConfigError as e:
                problems.append(
                    f"the overrides of {dataset}/{backbone}/{method} together: {e}"
                )
    if problems:
        raise WorkflowError(
            "bad hyperparameters in the config:\n  " + "\n  ".join(problems)
        )


# ---------------------------------------------------------------------------------------------------------
# Raw data


def needs_raw(dataset):
    """False for sources shipped with tplib (mt-sample)."""
    return SOURCES[dataset].default_path is None


def raw_candidates(dataset):
    """Where tplib.data.sources.resolve_raw looks for the raw file inside raw_dir."""
    src, folder = SOURCES[dataset], Path(config["raw_dir"])
    if folder.is_file():
        return [folder]
    return [folder / src.filename] + [
        folder / sub / src.filename for sub in src.subdirs
    ]


def download_target(dataset):
    """Where `tp fetch --resources resources/raw` puts the raw file."""
    src = SOURCES[dataset]
    return (
        f"{RESOURCES_RAW}/{src.subdirs[0]}/{src.filename}"
        if src.subdirs
        else f"{RESOURCES_RAW}/{src.filename}"
    )


def find_raw(dataset):
    return next((str(p) for p in raw_candidates(dataset) if p.is_file()), None)


def is_prepared(dataset):
    return all(
        Path(f"results/data/{dataset}/{f}").is_file()
        for f in ("dataset.npz", "stats.json")
    )


def raw_input(wildcards):
    """The prepare job's raw file: found in raw_dir; else the download target (download: true); else nothing
    (the data is prepared already, or the source is shipped with tplib).

    Marked ancient: a raw file's modification time says nothing about its content (a re-copied or re-mounted
    data folder gets new times), and `tp prepare` checks the content against the source's checksum, so a newer
    raw file must not make the whole grid run again."""
    d = wildcards.dataset
    if not needs_raw(d):
        return []
    found = find_raw(d)
    if found:
        return ancient(found)
    if config["download"]:
        return ancient(download_target(d))
    return []


def raw_arg(wildcards, input):
    return f"--raw {shlex.quote(str(input.raw))}" if input.raw else ""


def dataset_of_download(wildcards):
    return next(
        d
        for d in SOURCES
        if needs_raw(d)
        and SOURCES[d].filename
        and download_target(d) == (f"{RESOURCES_RAW}/{wildcards.rawpath}")
    )


def download_targets_regex():
    targets = [
        download_target(d)[len(RESOURCES_RAW) + 1 :]
        for d in SOURCES
        if needs_raw(d) and SOURCES[d].filename
    ]
    return "|".join(re.escape(t) for t in targets)


def check_raw():
    """With download: false, stop now when a dataset that still has to be prepared has no raw file, naming
    every missing file and where to put it."""
    if config["download"]:
        return
    missing = []
    for d in used_datasets():
        if not needs_raw(d) or is_prepared(d) or find_raw(d):
            continue
        try:  # the library has the last word (a missing file is not hashed, so this costs nothing)
            resolve_raw(d, config["raw_dir"], download=False)
            continue
        except DataError:
            pass
        src = SOURCES[d]
        put = (
            Path(config["raw_dir"])
            / (src.subdirs[0] if src.subdirs else "")
            / src.filename
        )
        origin = (
            f" ({src.archive_member or src.filename} from {src.url})" if src.url else ""
        )
        looked = ", ".join(str(p) for p in raw_candidates(d))
        missing.append(
            f"- {d}: {src.filename} not found (looked in {looked}); put it at {put}{origin}"
        )
    if missing:
        raise WorkflowError(
            "raw data missing, and download is false:\n"
            + "\n".join(missing)
            + "\nPut the files there, point raw_dir at the folder holding them (--config raw_dir=../shared/data), "
            "or set download: true (--config download=True) to fetch them into resources/raw."
        )


check_overrides()
check_raw()
