# Every configured run -> results/aggregate/*.csv (tplib.aggregate.aggregate; a script, so that the list of
# runs is not limited by the length of a command line), and the effective config (config.yaml) for the report.


rule aggregate:
    input:
        metrics=run_files("metrics.json"),
        configs=run_files("config.json"),
        summaries=run_files("train_summary.json"),
        train_logs=run_files("train_log.csv"),
        benchmarks=train_benchmarks(),
        stats=dataset_files("stats.json"),
    output:
        runs="results/aggregate/runs.csv",
        summary="results/aggregate/summary.csv",
        costs="results/aggregate/costs.csv",
        diagnostics="results/aggregate/diagnostics.csv",
        stats="results/aggregate/stats.csv",
        config="results/aggregate/config.yaml",
    log:
        "logs/aggregate/aggregate.log",
    conda:
        "../../environment.yml"
    params:
        runs=run_dirs(),
    script:
        "../scripts/aggregate.py"
