# Every finished run of the studies in `run` -> results/aggregate/*.csv (tplib.aggregate.aggregate; a script,
# so that the list of runs is not limited by the length of a command line), each run's recorded config and each
# declared cell's resolved config (configs.jsonl) and the studies as configured (config.yaml: titles, protocols,
# variants, searches, overrides) for the report, and every search's trials in one table (results/tuning/trials.csv;
# a search in progress contributes the trials in its storage so far).


rule aggregate:
    input:
        metrics=run_files("metrics.json", aggregated_runs()),
        configs=run_files("config.json", aggregated_runs()),
        summaries=run_files("train_summary.json", aggregated_runs()),
        train_logs=run_files("train_log.csv", aggregated_runs()),
        stats=dataset_files("stats.json", study_datasets()),
        trials=search_files(
            "trials.csv", list(dict.fromkeys(finished_searches() + all_searches()))
        ),
    output:
        runs="results/aggregate/runs.csv",
        summary="results/aggregate/summary.csv",
        costs="results/aggregate/costs.csv",
        diagnostics="results/aggregate/diagnostics.csv",
        stats="results/aggregate/stats.csv",
        configs="results/aggregate/configs.jsonl",
        config="results/aggregate/config.yaml",
        trials="results/tuning/trials.csv",
    log:
        "logs/aggregate/aggregate.log",
    conda:
        "../../environment.yml"
    params:
        runs=[run_dir(r) for r in aggregated_runs()],
        studies=studies_config(),
        in_progress=searches_in_progress(),
    script:
        "../scripts/aggregate.py"
