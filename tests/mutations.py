"""Mutation check: small deliberate bugs that the test suite must catch (not collected by pytest).

Each mutation is (name, library file, exact old text, new text, the pytest node ids that must catch it). For each
one this script copies the repository to a temporary folder, applies the patch there (the old text must occur
exactly once), runs the listed tests there with the copy first on PYTHONPATH, and records whether they caught it
(a test failed) or not. The working tree is never touched. Before the mutations, the listed tests are run once on
an unmutated copy: they must pass there, or no result would mean anything.

    .venv/bin/python tests/mutations.py              # every mutation, then a table and "N of M mutations caught"
    .venv/bin/python tests/mutations.py --only NAME  # one mutation (repeatable; a prefix such as 1 selects 1a-1c)
    .venv/bin/python tests/mutations.py --list       # the mutations and their tests

Exit status 0 when every selected mutation was caught, 1 otherwise (2: the baseline failed or a patch did not
apply).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]


class Mutation(NamedTuple):
    name: str
    about: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


TP = "tests/test_tp.py::"
EV = "tests/test_evaluate.py::"
DET = "tests/test_determinism.py::"
RES = "tests/test_resume.py::"
TU = "tests/test_tune.py::"

EPOCH_ORDER = (f"{TP}test_an_epoch_draws_every_user_once_in_a_new_order",)

MUTATIONS: list[Mutation] = [
    Mutation(
        "1a-draw-first-user", "the sequential draw uses users[c, 0] for every inner step", "tplib/train/tp.py",
        "return [[sampler.user_batch(int(users[c, i]), cap) for i in range(k)] for c in range(P)]",
        "return [[sampler.user_batch(int(users[c, 0]), cap) for i in range(k)] for c in range(P)]",
        (f"{TP}test_each_inner_step_trains_on_its_own_user", *EPOCH_ORDER),
    ),
    Mutation(
        "1b-epoch-reuses-step-1", "run_epoch gives every outer step the first step's users", "tplib/train/tp.py",
        "for st in self.outer_step(sampler, users[s], diag if want_diag else None):",
        "for st in self.outer_step(sampler, users[0], diag if want_diag else None):",
        EPOCH_ORDER,
    ),
    Mutation(
        "1b2-inner-steps-share-a-user", "run_epoch gives each chain's inner steps its first inner step's user",
        "tplib/train/tp.py",
        "for st in self.outer_step(sampler, users[s], diag if want_diag else None):",
        "for st in self.outer_step(sampler, np.repeat(users[s][:, :1], self.tp.k, 1), diag if want_diag else None):",
        EPOCH_ORDER,
    ),
    Mutation(
        "1c-users-with-replacement", "an epoch's users drawn with replacement, not a permutation",
        "tplib/train/tp.py",
        "order = self.rng.permutation(n)",
        "order = self.rng.integers(0, n, n)",
        EPOCH_ORDER,
    ),
    Mutation(
        "2a-is-head-swapped", "head/tail swapped in TPUpdater.is_head (and so labels)", "tplib/train/tp.py",
        "self.is_head = np.isin(sampler.users, split.existing_head)",
        "self.is_head = ~np.isin(sampler.users, split.existing_head)",
        (f"{TP}test_head_and_tail_labels_by_hand",),
    ),
    Mutation(
        "2b-labels-swapped", "head/tail swapped in TPUpdater.labels only", "tplib/train/tp.py",
        "self.labels = torch.as_tensor(self.is_head, dtype=",
        "self.labels = torch.as_tensor(~self.is_head, dtype=",
        (f"{TP}test_head_and_tail_labels_by_hand",),
    ),
    Mutation(
        "3-validation-ranks-test-item", "validation ranks seq[-1] given seq[:-1] (holdout 2 -> 1)",
        "tplib/evaluate.py",
        "return rank_users(model, ds, split.existing, 2, trained=True",
        "return rank_users(model, ds, split.existing, 1, trained=True",
        (f"{EV}test_validation_ranks_the_second_to_last_item_from_the_items_before_it",
         f"{EV}test_validation_masks_the_input_history_only"),
    ),
    Mutation(
        "4-mask-whole-sequence", "mask_seen removes the whole sequence (the test item too), not the input",
        "tplib/evaluate.py",
        "                rows = np.repeat(np.arange(len(chunk)), [len(h) for h in hist])\n"
        "                cols = np.concatenate(hist) if hist else np.zeros(0, np.int64)\n",
        "                full = [ds.seq(u) for u in chunk]\n"
        "                rows = np.repeat(np.arange(len(chunk)), [len(h) for h in full])\n"
        "                cols = np.concatenate(full) if full else np.zeros(0, np.int64)\n",
        (f"{EV}test_validation_masks_the_input_history_only",),
    ),
    Mutation(
        "5-new-users-as-trained", "new users scored with their own (untrained) indices", "tplib/evaluate.py",
        'for group, trained in (("existing", True), ("new", False)):',
        'for group, trained in (("existing", True), ("new", True)):',
        (f"{EV}test_new_users_are_ranked_as_never_trained",),
    ),
    Mutation(
        "6-rank-in-train-mode", "ranking with dropout active", "tplib/evaluate.py",
        "    model.eval()\n    device = next(model.parameters()).device\n",
        "    model.train()\n    device = next(model.parameters()).device\n",
        (f"{EV}test_ranks_are_computed_in_eval_mode",),
    ),
    Mutation(
        "6b-no-eval-call", "rank_users leaves the model in the mode it was given (train mode in fit)",
        "tplib/evaluate.py",
        "    model.eval()\n    device = next(model.parameters()).device\n",
        "    device = next(model.parameters()).device\n",
        (f"{EV}test_ranks_are_computed_in_eval_mode",),
    ),
    Mutation(
        "7-evaluate-split-seed-0", "evaluate_run splits with seed 0, not the run's", "tplib/run.py",
        "split = make_split(ds, cfg.seed, cfg.split.new_frac, cfg.split.head_frac)",
        "split = make_split(ds, 0, cfg.split.new_frac, cfg.split.head_frac)",
        (f"{DET}test_evaluate_splits_with_the_runs_seed",),
    ),
    Mutation(
        "8-loss-negatives-labelled-1", "bce_loss labels the negatives 1", "tplib/train/loss.py",
        "F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits)",
        "F.binary_cross_entropy_with_logits(neg_logits, torch.ones_like(neg_logits)",
        (f"{TP}test_bce_loss_by_hand",),
    ),
    Mutation(
        "9-baseline-no-step", "the baseline never calls opt.step()", "tplib/train/baseline.py",
        "            self.opt.step()\n",
        "",
        (f"{TP}test_a_baseline_epoch_is_one_adam_step_downhill",),
    ),
    Mutation(
        "10-model-pt-last-epoch", "model.pt rewritten at every validation (the last epoch's)", "tplib/train/loop.py",
        '                    atomic_torch_save(_checkpoint(cfg, ds, best_state, epoch, score), out / "model.pt")\n'
        "                else:\n"
        "                    evals_since_best += 1\n",
        "                else:\n"
        "                    evals_since_best += 1\n"
        "                atomic_torch_save(_checkpoint(cfg, ds, copy.deepcopy(model.state_dict()), epoch, score),\n"
        '                                  out / "model.pt")\n',
        (f"{RES}test_model_pt_holds_the_best_validation_epoch",),
    ),
    Mutation(
        "11-caser-mean-over-all-users", "Caser's unseen user: the mean over every user row, not the trained ones",
        "tplib/train/loop.py",
        "    model.set_trained_users(split.existing)",
        "    model.set_trained_users(np.arange(ds.n_users))",
        ("tests/test_models.py::test_training_marks_the_existing_users_for_casers_unseen_user",
         f"{DET}test_evaluate_splits_with_the_runs_seed"),
    ),
    Mutation(
        "12a-negatives-below-max-id", "the first negative draw never gives the highest item id",
        "tplib/data/sampler.py",
        "neg = self.rng.integers(1, self.n_items + 1, size=pos.shape)",
        "neg = self.rng.integers(1, self.n_items, size=pos.shape)",
        ("tests/test_sampler.py::test_negatives_cover_every_unseen_item_up_to_the_highest_id",),
    ),
    Mutation(
        "12b-redraws-below-max-id", "rejected negatives redrawn without the highest item id",
        "tplib/data/sampler.py",
        "neg[bad] = self.rng.integers(1, self.n_items + 1, size=int(bad.sum()))",
        "neg[bad] = self.rng.integers(1, self.n_items, size=int(bad.sum()))",
        ("tests/test_sampler.py::test_negatives_cover_every_unseen_item_up_to_the_highest_id",),
    ),
    # Seeds: a seed that some part of a run ignores
    Mutation(
        "S1-torch-seed-ignored", "fit seeds torch's generator with 0 (initialisation, dropout)", "tplib/train/loop.py",
        "    seed_everything(cfg.seed)\n",
        "    seed_everything(0)\n",
        (f"{DET}test_another_seed_gives_other_parameters_and_metrics",),
    ),
    Mutation(
        "S2-sampler-seed-ignored", "the training sampler's generator ignores the seed", "tplib/train/loop.py",
        "rng_for(cfg.seed, 1)",
        "rng_for(0, 1)",
        (f"{DET}test_another_seed_gives_other_parameters_and_metrics",),
    ),
    Mutation(
        "S3-tp-order-seed-ignored", "TP's user-order generator ignores the seed", "tplib/train/tp.py",
        "self.rng = rng_for(cfg.seed, 2)",
        "self.rng = rng_for(0, 2)",
        (f"{DET}test_another_seed_gives_other_parameters_and_metrics",),
    ),
    Mutation(
        "S4-training-split-seed-0", "fit splits with seed 0", "tplib/train/loop.py",
        "    split = make_split(ds, cfg.seed, cfg.split.new_frac, cfg.split.head_frac)\n"
        "    model, sampler, updater = build_training(",
        "    split = make_split(ds, 0, cfg.split.new_frac, cfg.split.head_frac)\n"
        "    model, sampler, updater = build_training(",
        (f"{DET}test_another_seed_gives_other_parameters_and_metrics",
         f"{DET}test_evaluate_splits_with_the_runs_seed"),
    ),
    Mutation(
        "R1-resume-ignores-seed", "resume.pt of another seed accepted as this run's", "tplib/train/loop.py",
        '    if with_defaults(saved.get("config")) != cfg.to_dict() or',
        '    if {**with_defaults(saved.get("config")), "seed": cfg.seed} != cfg.to_dict() or',
        (f"{RES}test_a_resumed_run_is_its_own_seed_not_another",),
    ),
    # Searches: a stopped trial's retry, a control's pairing
    Mutation(
        "T1-retry-new-settings", "a stopped trial is tried again with newly sampled settings", "tplib/tune.py",
        'study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": first})',
        'study.enqueue_trial({}, user_attrs={"retry_of": first})',
        (f"{TU}test_a_killed_trial_is_tried_again_with_its_settings_from_its_checkpoint",),
    ),
    Mutation(
        "T2-retry-from-scratch", "a retried trial trains in a new folder, not from its checkpoint", "tplib/tune.py",
        "folder = out / \"trials\" / f\"{trial.user_attrs.get('retry_of', trial.number)}\"",
        "folder = out / \"trials\" / f\"{trial.number}\"",
        (f"{TU}test_a_killed_trial_is_tried_again_with_its_settings_from_its_checkpoint",),
    ),
    Mutation(
        "T3-errors-read-as-stops", "a trial that raised is counted as interrupted", "tplib/trials.py",
        'interrupted = t.state.name == "FAIL" and "error" not in t.user_attrs',
        'interrupted = t.state.name == "FAIL"',
        (f"{TU}test_a_trial_that_raises_fails_with_its_error_and_is_not_tried_again",),
    ),
    Mutation(
        "A1-control-against-ignored", "a control variant is paired with the baseline, not the variant it names",
        "tplib/aggregate.py",
        "return [against.get((st, v)) or (controls.get(st, \"\") if m == \"tp\" else \"\")",
        "return [(controls.get(st, \"\") if m == \"tp\" else \"\")",
        ("tests/test_aggregate.py::test_a_variant_named_against_another_is_paired_with_it",),
    ),
    Mutation(
        "13-table3-new-reads-existing", "Table 3's new-user rows read the existing users' numbers",
        "tplib/report/claims.py",
        "                    t = cell(tp, ds, bb, group, metric, N)",
        "                    t = cell(tp, ds, bb, \"existing\", metric, N)",
        ("tests/test_report_tables.py::test_table3_numbers_are_the_main_studys_with_the_papers_beside",),
    ),
    Mutation(
        "14-table3-other-study", "Table 3 reads every study's rows, not the main study's",
        "tplib/report/render.py",
        "t3 = C.table3(agg.study(\"summary\", main), tp_name",
        "t3 = C.table3(agg.summary, tp_name",
        ("tests/test_report_tables.py::test_table3_not_run_cells_and_tp_of_another_study",),
    ),
    Mutation(
        "15a-noalign-moves-vmapped", "without alignment, the vectorised chains still take their inner steps",
        "tplib/train/chains.py",
        "moves = self.tp.align",
        "moves = True",
        (f"{TP}test_fast_outer_step_equals_the_reference",),
    ),
    Mutation(
        "15b-noalign-moves-looped", "without alignment, the looped chains still take their inner steps",
        "tplib/train/chains.py",
        "                    if self.tp.align:\n",
        "                    if True:\n",
        (f"{TP}test_fast_outer_step_equals_the_reference",
         f"{TP}test_without_alignment_the_outer_step_is_adam_on_the_users_summed_gradient"),
    ),
    Mutation(
        "15c-noalign-ignored-reference", "the plain reference ignores tp.align", "tplib/train/algorithm.py",
        "                if not align:",
        "                if False:",
        (f"{TP}test_without_alignment_every_inner_gradient_is_taken_at_the_start",
         f"{TP}test_fast_outer_step_equals_the_reference"),
    ),
    Mutation(
        "16-resume-needs-every-key", "a resume state that predates a setting is thrown away",
        "tplib/train/loop.py",
        'if with_defaults(saved.get("config")) != cfg.to_dict()',
        'if saved.get("config") != cfg.to_dict()',
        ("tests/test_resume.py::test_resume_state_written_before_a_setting_existed_is_resumed",),
    ),
    Mutation(
        "17a-live-trial-failed-on-sight", "a starting worker fails another worker's live trial", "tplib/tune.py",
        '        if not (beats and t.user_attrs.get("heartbeat")):',
        "        if True:",
        ("tests/test_tune.py::test_a_live_workers_trial_counts_and_is_tried_again_once_its_heartbeat_stops",),
    ),
    Mutation(
        "17b-running-trials-not-counted", "a worker does not count other workers' running trials",
        "tplib/tune.py",
        "        if done >= n_trials or (done + running >= n_trials and not waiting):",
        "        if done >= n_trials:",
        ("tests/test_tune.py::test_a_live_workers_trial_counts_and_is_tried_again_once_its_heartbeat_stops",),
    ),
    Mutation(
        "17c-workers-not-started", "tp tune --workers N runs one worker only", "tplib/tune.py",
        "             for i in range(1, workers)]",
        "             for i in range(1, 1)]",
        ("tests/test_tune.py::test_workers_share_one_search_and_its_budget",),
    ),
]

IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".snakemake",
                                "*.pt", "*.egg-info")
#: Per folder (relative to the repository), what else is left out: logs and the workflow's outputs.
SKIP = {".": {"logs"}, "results": {"data", "runs", "tuning", "tmp", "benchmarks", "figures"}}


def copy_repo(dest: Path) -> Path:
    """The repository's source tree (no .git, virtualenv, caches, checkpoints or results/data) under ``dest``."""
    root = dest / "repo"

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = os.path.relpath(folder, REPO)
        return set(IGNORE(folder, names)) | (SKIP.get(rel, set()) & set(names))

    shutil.copytree(REPO, root, ignore=ignore, symlinks=True)
    return root


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def pytest(python: str, root: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    try:
        p = subprocess.run(cmd, cwd=root, env=env_for(root), capture_output=True, text=True, timeout=timeout,
                           check=False)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    return p.returncode, p.stdout + p.stderr


def failed_ids(output: str) -> list[str]:
    return [line.split()[1] for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def apply(root: Path, m: Mutation) -> None:
    path = root / m.file
    text = path.read_text()
    n = text.count(m.old)
    if n != 1:
        raise ValueError(f"{m.name}: the old text occurs {n} times in {m.file} (must be exactly once)")
    path.write_text(text.replace(m.old, m.new))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run only the mutations whose name is NAME or starts with it (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    default_py = REPO / ".venv" / "bin" / "python"
    ap.add_argument("--python", default=str(default_py) if default_py.exists() else sys.executable,
                    help="the interpreter that runs pytest (default: the repository's .venv)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per pytest run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the listed tests")
    args = ap.parse_args(argv)

    chosen = MUTATIONS
    if args.only:
        chosen = [m for m in MUTATIONS if any(m.name == o or m.name.startswith(o) for o in args.only)]
        if not chosen:
            ap.error(f"no mutation named {args.only}; known: {', '.join(m.name for m in MUTATIONS)}")
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.about} ({m.file})")
            for t in m.tests:
                print(f"    {t}")
        return 0

    with tempfile.TemporaryDirectory(prefix="tp-mutations-") as tmp:
        tmp = Path(tmp)
        if not args.no_baseline:
            root = copy_repo(tmp / "baseline")
            where = subprocess.run([args.python, "-c", "import tplib; print(tplib.__file__)"], cwd=root,
                                   env=env_for(root), capture_output=True, text=True, check=False).stdout.strip()
            if not Path(where).resolve().is_relative_to(root.resolve()):
                print(f"the copy's tplib is not the one imported ({where}); aborting", file=sys.stderr)
                return 2
            tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
            t0 = time.perf_counter()
            rc, out = pytest(args.python, root, tests, args.timeout)
            if rc != 0:
                print(out[-4000:], file=sys.stderr)
                print(f"baseline: the listed tests do not pass on the unmutated code (rc {rc}); aborting",
                      file=sys.stderr)
                return 2
            print(f"baseline: {len(tests)} tests pass on the unmutated copy ({time.perf_counter() - t0:.0f} s)")
            shutil.rmtree(tmp / "baseline")

        results = []
        for m in chosen:
            t0 = time.perf_counter()
            root = copy_repo(tmp / m.name)
            try:
                apply(root, m)
            except ValueError as e:
                print(e, file=sys.stderr)
                results.append((m, "patch failed", []))
                continue
            rc, out = pytest(args.python, root, m.tests, args.timeout)
            status = {0: "SURVIVED", 1: "caught"}.get(rc, f"error (rc {rc})")
            results.append((m, status, failed_ids(out)))
            print(f"{m.name:32s} {status:14s} {time.perf_counter() - t0:5.0f} s", flush=True)
            shutil.rmtree(root.parent)

    print()
    w = max(len(m.name) for m, _, _ in results)
    print(f"{'mutation':{w}s}  {'file':24s}  {'result':14s}  caught by")
    print(f"{'-' * w}  {'-' * 24}  {'-' * 14}  {'-' * 40}")
    for m, status, failed in results:
        by = ", ".join(f.split("::", 1)[-1] for f in failed) or "-"
        print(f"{m.name:{w}s}  {m.file:24s}  {status:14s}  {by}")
    caught = sum(status == "caught" for _, status, _ in results)
    print(f"\n{caught} of {len(results)} mutations caught")
    if any(status == "patch failed" for _, status, _ in results):
        return 2
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
