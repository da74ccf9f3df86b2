"""``tp``: the command line the workflow calls and users run by hand.

    tp prepare  --dataset NAME --raw PATH --out DIR
    tp train    --data DIR --backbone {gru4rec,caser,sasrec} --method {baseline,tp} --seed S --out RUN [--set k=v ...]
    tp evaluate --data DIR --run RUN --out metrics.json
    tp fetch    --dataset NAME --resources DIR
    tp tune     --data DIR --backbone B --method M --space JSON --trials N --out DIR [--storage URL] [--workers N]
                [--set k=v ...]
    tp aggregate (--runs RUN ... | --runs-list FILE) [--benchmarks TSV ...] [--stats JSON ...] --out DIR
    tp report   --aggregate DIR --out report/report.html [--figures DIR] [--readme README.md] [--trials CSV]

Each subcommand parses its arguments and calls one library function. Bad input stops with one line on stderr
(``tp: error: ...``) and exit status 2; nothing that looks complete is left behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tplib.config import BACKBONES, METHODS
from tplib.io import ConfigError

log = logging.getLogger("tplib")


def unescape_sep(text: str) -> str:
    """A separator as typed on a command line: ``\\t`` (backslash, t: what `--sep '\\t'` passes) is a tab, and so on
    for the other C escapes; a literal separator is taken as it is."""
    return {"\\t": "\t", "\\n": "\n", "\\r": "\r", "\\0": "\0", "\\\\": "\\"}.get(text, text)


def _cmd_prepare(args: argparse.Namespace) -> None:
    from tplib.data.prepare import prepare

    generic = {k: getattr(args, k) for k in ("sep", "user_col", "item_col", "time_col", "name")}
    if generic["sep"] is not None:
        generic["sep"] = unescape_sep(generic["sep"])
    ds = prepare(
        args.dataset,
        Path(args.raw) if args.raw else None,
        Path(args.out),
        verify=not args.no_verify,
        download=args.download,
        resources=Path(args.resources) if args.resources else None,
        item_min=args.item_min,
        user_min=args.user_min,
        kcore=args.kcore,
        **{k: v for k, v in generic.items() if v is not None},
    )
    print(json.dumps(ds.stats()))


def _cmd_train(args: argparse.Namespace) -> None:
    from tplib.config import build_config, parse_sets
    from tplib.data.dataset import SeqDataset
    from tplib.io import atomic_write_text
    from tplib.train.loop import fit

    ds = SeqDataset.load(args.data)
    cfg = build_config(args.backbone, args.method, args.seed, ds.name, parse_sets(args.set or []))
    if args.study or args.variant:  # the run's place in a study, read by `tp aggregate`
        label = {"study": args.study or "", "variant": args.variant or args.method}
        atomic_write_text(Path(args.out) / "run.json", json.dumps(label, indent=2, sort_keys=True) + "\n")
    summary = fit(cfg, ds, args.out, resume=not args.no_resume)
    print(json.dumps(summary))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from tplib.data.dataset import SeqDataset
    from tplib.run import evaluate_run

    ds = SeqDataset.load(args.data)
    metrics = evaluate_run(ds, Path(args.run), Path(args.out), overrides=args.set or [])
    e = metrics["existing"]["all"]
    n = metrics["new"]["all"]
    print(
        f"existing HR@10 {e['HR@10']:.4f} NDCG@10 {e['NDCG@10']:.4f} | new HR@10 {n['HR@10']:.4f} "
        f"NDCG@10 {n['NDCG@10']:.4f}"
    )


def _cmd_fetch(args: argparse.Namespace) -> None:
    from tplib.data.sources import fetch

    print(fetch(args.dataset, None, Path(args.resources), download=True, verify=not args.no_verify))


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def _cmd_tune(args: argparse.Namespace) -> None:
    from tplib.data.dataset import SeqDataset
    from tplib.io import DataError
    from tplib.tune import tune

    try:
        space = json.loads(Path(args.space).read_text() if Path(args.space).is_file() else args.space)
    except json.JSONDecodeError as e:
        raise DataError(f"--space: not JSON ({e}); give a JSON object or a file holding one") from None
    base = list(args.set or [])
    if args.keep_from:
        best = Path(args.keep_from)
        if not best.is_file():
            raise DataError(f"{best}: not found; run the search it comes from first")
        params = json.loads(best.read_text())["params"]
        base += [f"{k}={params[k]}" for k in args.keep or [] if k in params]
    table = tune(SeqDataset.load(args.data), args.backbone, args.method, space, out=Path(args.out),
                 n_trials=args.trials, seed=args.seed, base_sets=base, storage=args.storage or "", name=args.name or "",
                 sampler_seed=args.sampler_seed, prune_after=args.prune_after, workers=args.workers)
    print(table["state"].value_counts().to_dict())


def _cmd_aggregate(args: argparse.Namespace) -> None:
    from tplib.aggregate import aggregate, read_runs_list

    runs: list[str] = list(args.runs or [])
    benches: list[str | None] | None = list(args.benchmarks) if args.benchmarks else None
    if args.runs_list:
        listed, listed_benches = read_runs_list(args.runs_list)
        runs += listed
        if benches is not None or any(listed_benches):
            benches = (benches or [None] * (len(runs) - len(listed))) + listed_benches
    if not runs:
        from tplib.io import DataError

        raise DataError("no runs given; pass --runs RUN ... or --runs-list FILE")
    tables = aggregate(runs, Path(args.out), benchmarks=benches, stats=args.stats or [])
    print(", ".join(f"{name}.csv: {len(df)} rows" for name, df in tables.items()))


def _cmd_report(args: argparse.Namespace) -> None:
    from tplib.report import render_report

    print(render_report(Path(args.aggregate), Path(args.out), figures_dir=Path(args.figures), readme=args.readme,
                        trials=args.trials))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tp", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    pp = sub.add_parser("prepare", help="read, order, filter and re-index a raw dataset; write stats.json")
    pp.add_argument("--dataset", required=True, help="ml1m, movietweetings, music, game, mt-sample, ...")
    pp.add_argument("--raw", help="the raw file, or a folder holding it (default: the resources folder)")
    pp.add_argument("--out", required=True, help="output folder (dataset.npz, stats.json)")
    pp.add_argument("--download", action="store_true", help="download from the canonical URL when not found")
    pp.add_argument("--resources", help="where downloads go (default: resources/raw)")
    pp.add_argument("--no-verify", action="store_true", help="accept a raw file whose checksum differs (recorded)")
    pp.add_argument("--item-min", type=int, help="drop items with fewer records (default: the source's setting)")
    pp.add_argument("--user-min", type=int, help="then drop users with fewer records (default: the source's)")
    pp.add_argument("--kcore", action="store_true", help="repeat the two cuts until nothing changes")
    g = pp.add_argument_group("generic delimited files (--dataset generic)")
    g.add_argument("--name", help="dataset name recorded in stats.json")
    g.add_argument("--sep", help="field separator (default ','); '\\t' is a tab")
    g.add_argument("--user-col", help="user column name")
    g.add_argument("--item-col", help="item column name")
    g.add_argument("--time-col", help="time column name; without it, file order is time order")
    pp.set_defaults(func=_cmd_prepare)

    pt = sub.add_parser("train", help="train one backbone with one method and seed")
    pt.add_argument("--data", required=True, help="a folder written by `tp prepare`")
    pt.add_argument("--backbone", required=True, choices=BACKBONES)
    pt.add_argument("--method", default="baseline", choices=METHODS)
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--out", required=True, help="run folder (config.json, model.pt, train_log.csv, ...)")
    pt.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.lr=0.01")
    pt.add_argument("--study", help="the study the run belongs to (recorded in RUN/run.json)")
    pt.add_argument("--variant", help="the study's variant the run is (recorded in RUN/run.json)")
    pt.add_argument("--no-resume", action="store_true",
                    help="start from scratch even if RUN/resume.pt (an interrupted run of this config) exists")
    pt.set_defaults(func=_cmd_train)

    pe = sub.add_parser("evaluate", help="full-ranking test metrics of a trained run")
    pe.add_argument("--data", required=True)
    pe.add_argument("--run", required=True, help="a run folder written by `tp train`")
    pe.add_argument("--out", required=True, help="metrics.json; ranks.csv.gz and evaluate_config.json go beside it")
    pe.add_argument("--set", action="append", metavar="KEY=VALUE", help="override eval.* or train.device")
    pe.set_defaults(func=_cmd_evaluate)

    pf = sub.add_parser("fetch", help="download a dataset's raw file (checked) into a resources folder")
    pf.add_argument("--dataset", required=True, help="ml1m, movietweetings, music, game")
    pf.add_argument("--resources", required=True, help="the folder downloads go to, e.g. resources/raw")
    pf.add_argument("--no-verify", action="store_true", help="accept a file whose checksum differs")
    pf.set_defaults(func=_cmd_fetch)

    pn = sub.add_parser("tune", help="search hyperparameters on validation (Optuna; trials are ordinary runs)")
    pn.add_argument("--data", required=True)
    pn.add_argument("--backbone", required=True, choices=BACKBONES)
    pn.add_argument("--method", default="baseline", choices=METHODS)
    pn.add_argument("--seed", type=int, default=0, help="the split and initialisation every trial uses")
    pn.add_argument("--space", required=True, help="the search space: JSON (or a JSON file), setting -> "
                    '{"log": [lo, hi]} | {"float": [lo, hi]} | {"int": [lo, hi, step]} | {"choice": [...]}')
    pn.add_argument("--trials", type=int, required=True, help="finished or pruned trials to reach")
    pn.add_argument("--out", required=True, help="folder for trials.csv, best.json (and optuna.db by default)")
    pn.add_argument("--storage", help="an Optuna storage URL (default: sqlite OUT/optuna.db)")
    pn.add_argument("--name", help="the search's name in the storage (default: DATASET-BACKBONE-METHOD)")
    pn.add_argument("--prune-after", type=int, default=0, metavar="EPOCHS",
                    help="no trial is pruned before this epoch (default 0: from its first validation on)")
    pn.add_argument("--sampler-seed", type=int, default=0, help="the TPE sampler's seed")
    pn.add_argument("--workers", type=_positive_int, default=1,
                    help="trials run at once on this machine, one process each (default 1)")
    pn.add_argument("--keep-from", metavar="BEST_JSON", help="another search's best.json whose --keep settings "
                    "every trial takes (TP on the baseline's tuned architecture)")
    pn.add_argument("--keep", nargs="+", metavar="KEY", help="the settings taken from --keep-from")
    pn.add_argument("--set", action="append", metavar="KEY=VALUE", help="a fixed setting of every trial")
    pn.set_defaults(func=_cmd_tune)

    pa = sub.add_parser("aggregate", help="tidy tables, summaries and paired tests of finished runs")
    pa.add_argument("--runs", nargs="+", metavar="RUN", help="run folders (tp train + tp evaluate)")
    pa.add_argument("--runs-list", help="a file: one run folder a line, optionally TAB and its benchmark file")
    pa.add_argument("--benchmarks", nargs="+", metavar="TSV",
                    help="training benchmark files, one per --runs (default: each run folder's benchmark.tsv)")
    pa.add_argument("--stats", nargs="+", metavar="JSON", help="the datasets' stats.json files")
    pa.add_argument("--out", required=True, help="output folder (runs/summary/costs/diagnostics/stats.csv)")
    pa.set_defaults(func=_cmd_aggregate)

    pr = sub.add_parser("report", help="the HTML report (tables, figures, protocol, provenance) of aggregated results")
    pr.add_argument("--aggregate", required=True,
                    help="the folder the workflow's aggregate rule wrote (runs/summary/costs/...csv, config.yaml)")
    pr.add_argument("--out", required=True, help="the HTML file, e.g. report/report.html (self-contained)")
    pr.add_argument("--figures", default="results/figures", help="where the figures go as PNG and PDF")
    pr.add_argument("--readme", help="a README whose results block is rewritten from the same tables")
    pr.add_argument("--trials", help="every search's trials (results/tuning/trials.csv), for the fair test's section")
    pr.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from tplib.io import DataError

    try:
        args.func(args)
    except (DataError, ConfigError) as e:
        print(f"tp: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"tp: error: {e.filename or e}: not found", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if "CUDA" not in str(e):
            raise
        print(f"tp: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
