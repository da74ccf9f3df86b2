"""Helpers of the workflow: the studies' runs, each run's `tp train --set` arguments, the raw-data check.

Everything here runs when Snakemake parses the workflow, so a bad config value, an unknown `--set` key or a
missing raw file stops the workflow before any job starts, with one message naming the key or the files. The
workflow imports tplib (never the reverse): the config's hyperparameters are checked by tplib.config, and the
raw files are looked up by tplib.data.sources, the same look-up `tp prepare --raw` makes.
"""

import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tplib import grid
from tplib.config import BACKBONES
from tplib.data import sources
from tplib.data.sources import SOURCES
from tplib.grid import run_dir

validate(config, "../schemas/config.schema.yaml")

# Jobs find `tp` on the PATH; where none is there (Snakemake run from a virtual environment that is not
# activated), they use the one beside the Python that runs Snakemake, the environment that parsed this file.
# Appended, so an activated environment (or --use-conda's) still comes first.
shell.prefix(
    f'set -euo pipefail; export PATH="$PATH":{shlex.quote(str(Path(sys.executable).parent))}; '
)

RESOURCES_RAW = "resources/raw"  # where `download: true` puts raw files
MANAGED_KEYS = {
    "train.device": "the top-level `device` key",
    "train.threads": "the rule's threads (profiles: set-threads)",
}

# ---------------------------------------------------------------------------------------------------------
# The runs (tplib.grid: the same list benchmarks/grid_cost.py prices)


def all_runs():
    """The runs this invocation makes: the selected studies' runs, narrowed by `select`; none with train: false."""
    return grid.all_runs(config) if config["train"] else []


def finished_runs():
    """Every finished run of the studies in `run` (its metrics.json is there), selected or not: the aggregate
    covers them all, so a study can be run part by part (and runs copied in from another machine join).
    """
    runs = []
    for name in grid.studies_to_run(config):
        runs += [
            r
            for r in grid.study_runs(config, name)
            if Path(run_dir(r), "metrics.json").is_file()
        ]
    return runs


def aggregated_runs():
    return list(dict.fromkeys(finished_runs() + all_runs()))


def study_datasets():
    """Every dataset the studies and searches in `run` declare: Table 2 shows them all, run or not."""
    studies = [
        d for n in grid.studies_to_run(config) for d in config["studies"][n]["cells"]
    ]
    searches = [
        d for n in grid.tunings_to_run(config) for d in config["tunings"][n]["cells"]
    ]
    return list(dict.fromkeys(studies + searches))


def studies_config():
    """The studies as configured, for the report: those in `run` and the two the report's Table 3 and Figures 6-7
    read (shown as not run where they are not in `run`), the searches, and the shared overrides; no run-time
    keys."""
    shown = config["report"]
    names = list(
        dict.fromkeys([*grid.studies_to_run(config), shown["main"], shown["ablation"]])
    )
    return {
        "studies": {n: config["studies"][n] for n in names},
        "tunings": config["tunings"],
        "report": shown,
        "overrides": config["overrides"],
    }


def run_files(name, runs=None):
    """One file of each run (default: the runs this invocation makes), e.g. run_files('metrics.json')."""
    return [f"{run_dir(r)}/{name}" for r in (all_runs() if runs is None else runs)]


def dataset_files(name, datasets):
    return [f"results/data/{d}/{name}" for d in datasets]


def run_data(wildcards):
    """A run's prepared dataset, as the input of its training and evaluation jobs; nothing for a finished run (its
    metrics.json is there, e.g. committed): preparing the data anew in a fresh clone must not make a finished run
    train again, as an input made by a job that runs would."""
    if Path(run_dir(run_of(wildcards)), "metrics.json").is_file():
        return {}
    return prepared_data(wildcards.dataset)


def prepared_data(dataset):
    """The files `tp prepare` writes for a dataset, as named inputs of a job that reads them."""
    return {
        "data": f"results/data/{dataset}/dataset.npz",
        "stats": f"results/data/{dataset}/stats.json",
    }


def run_of(wildcards):
    return grid.Run(
        wildcards.study,
        wildcards.dataset,
        wildcards.backbone,
        wildcards.variant,
        int(wildcards.seed),
    )


# ---------------------------------------------------------------------------------------------------------
# `tp train --set` arguments


def device_sets():
    return [f"train.device={config['device']}"]


def train_sets(wildcards):
    """All `--set` arguments of a training job but train.threads (the shell adds it from {threads})."""
    sets = grid.run_sets(config, run_of(wildcards)) + device_sets()
    return " ".join(f"--set {shlex.quote(s)}" for s in sets)


def run_method(wildcards):
    return grid.run_method(config, run_of(wildcards))


DEVICE_GPUS = 1 if config["device"].startswith("cuda") else 0


# ---------------------------------------------------------------------------------------------------------
# Searches (tp tune)


def all_searches():
    """The searches this invocation makes (none with train: False)."""
    return grid.all_searches(config) if config["train"] else []


def finished_searches():
    return [
        s
        for s in grid.all_searches({**config, "select": {}})
        if Path(grid.tuning_dir(s), "trials.csv").is_file()
    ]


def searches_in_progress():
    """The searches with trials in their SQLite storage but no trials.csv yet (killed, or still running): the
    aggregate reads their trials so far, and the report marks them in progress."""
    return [
        {"db": f"{grid.tuning_dir(s)}/optuna.db", "name": grid.search_name(s), "dataset": s.dataset,
         "backbone": s.backbone, "method": s.method}
        for s in grid.all_searches({**config, "select": {}})
        if not config["tunings"][s.tuning]["storage"]
        and Path(grid.tuning_dir(s), "optuna.db").is_file()
        and not Path(grid.tuning_dir(s), "trials.csv").is_file()
    ]  # fmt: skip


def search_files(name, searches):
    return [f"{grid.tuning_dir(s)}/{name}" for s in searches]


def search_data(wildcards):
    """A search's prepared dataset; nothing once it finished (its best.json is there), as for runs (run_data)."""
    search = grid.Search(
        wildcards.tuning, wildcards.dataset, wildcards.backbone, wildcards.method
    )
    if Path(grid.tuning_dir(search), "best.json").is_file():
        return {}
    return prepared_data(wildcards.dataset)


def tune_keep_input(wildcards):
    """TP's search starts from the baseline's best trial of the same cell (its `keep` settings)."""
    if wildcards.method != "tp" or not config["tunings"][wildcards.tuning].get("keep"):
        return []
    base = grid.Search(
        wildcards.tuning, wildcards.dataset, wildcards.backbone, "baseline"
    )
    return ancient(
        f"{grid.tuning_dir(base)}/best.json"
    )  # file times in a clone mean nothing


def tune_args(wildcards, input):
    """`tp tune` arguments: the search's space, budget, seed and storage; every trial's fixed settings (the
    overrides, the tuning's fixed settings of the method, its protocol, the device)."""
    tu = config["tunings"][wildcards.tuning]
    ov = config["overrides"]
    fixed = {}
    for part in (
        ov["all"],
        ov["datasets"].get(wildcards.dataset),
        ov["backbones"].get(wildcards.backbone),
        ov["methods"].get(wildcards.method),
        tu["fixed"].get(wildcards.method),
    ):
        fixed.update(part or {})
    fixed.update({grid.PROTOCOL_KEYS[k]: v for k, v in tu["protocol"].items()})
    sets = [f"{k}={grid.fmt_value(v)}" for k, v in fixed.items()] + device_sets()
    args = [
        "--seed", str(tu["seed"]), "--trials", str(tu["trials"]), "--prune-after", str(tu["prune_after"]),
        "--space", json.dumps(tu["spaces"][wildcards.method]),
        "--name", grid.search_name(grid.Search(wildcards.tuning, wildcards.dataset, wildcards.backbone, wildcards.method)),
    ]  # fmt: skip
    if tu["storage"]:
        args += ["--storage", tu["storage"]]
    if input.keep:
        args += ["--keep-from", str(input.keep), "--keep", *tu["keep"]]
    args += [x for s in sets for x in ("--set", s)]
    return " ".join(shlex.quote(a) for a in args)


def check_studies():
    """Check the studies now, so that a bad key or value stops the workflow before any job, naming it (see
    tplib.grid.check_studies); then that no finished run's recorded settings differ from what its study asks for
    now (two runs with different settings never share a folder)."""
    problems = grid.check_studies(config, MANAGED_KEYS)
    if problems:
        raise WorkflowError(
            "bad studies or hyperparameters in the config:\n  " + "\n  ".join(problems)
        )
    if (
        config["report"]["main"] not in config["studies"]
        or config["report"]["ablation"] not in config["studies"]
    ):
        raise WorkflowError(
            f"report: {config['report']} names a study the config does not declare"
        )
    stale = []
    for r in aggregated_runs():
        recorded = Path(run_dir(r), "config.json")
        if not recorded.is_file():
            continue
        try:
            have = json.loads(recorded.read_text())
        except json.JSONDecodeError:
            continue  # a half-written run: its training job starts again
        diff = grid.config_conflicts(have, grid.run_config(config, r).to_dict())
        if diff:
            stale.append(f"{run_dir(r)}: {'; '.join(diff[:3])}")
    if stale:
        raise WorkflowError(
            f"{len(stale)} run folder(s) hold runs with other settings than their study asks for now:\n  "
            + "\n  ".join(stale[:10])
            + "\nGive the changed variant a new name in the config (its runs then go to a new folder), or move "
            "the old folders away to rerun them."
        )


# ---------------------------------------------------------------------------------------------------------
# Raw data


def needs_raw(dataset):
    """False for sources shipped with tplib (mt-sample)."""
    return SOURCES[dataset].default_path is None


def find_raw(dataset):
    """The raw file of a dataset in raw_dir (a file, or a folder searched with the source's known sub-folders),
    as `tp prepare --raw raw_dir` finds it; None when it is not there."""
    found = sources.find_raw(dataset, config["raw_dir"])
    return str(found) if found else None


def download_target(dataset):
    """Where `tp fetch --resources resources/raw` puts the raw file."""
    return sources.download_target(dataset, RESOURCES_RAW).as_posix()


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
    for d in study_datasets():
        if not needs_raw(d) or is_prepared(d) or find_raw(d):
            continue
        looked = ", ".join(str(p) for p in sources.raw_candidates(d, config["raw_dir"]))
        put = sources.download_target(d, config["raw_dir"])
        missing.append(
            f"- {d}: {SOURCES[d].filename} not found (looked in {looked}); put it at {put}"
            f"{sources.where_from(d)}"
        )
    if missing:
        raise WorkflowError(
            "raw data missing, and download is false:\n"
            + "\n".join(missing)
            + "\nPut the files there, point raw_dir at the folder holding them (--config raw_dir=../shared/data), "
            "or set download: true (--config download=True) to fetch them into resources/raw."
        )


check_studies()
check_raw()
