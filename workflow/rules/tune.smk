# One hyperparameter search (tp tune, Optuna) of one method on one cell: its trials are ordinary training runs
# on the search's seed, read on validation only. TP's search takes the baseline's tuned architecture (the
# tuning's `keep` settings from the baseline's best.json). The Optuna storage (an SQLite file beside the outputs
# unless `storage` names another) survives a killed job, so the same command resumes the search. The job takes one
# core per worker (the tuning's `workers`: trials at once), each worker one torch thread.

TUNE = "results/tuning/{tuning}/{dataset}/{backbone}/{method}"


rule tune:
    input:
        unpack(search_data),
        keep=tune_keep_input,
    output:
        trials=f"{TUNE}/trials.csv",
        best=f"{TUNE}/best.json",
    log:
        "logs/tune/{tuning}/{dataset}/{backbone}/{method}.log",
    conda:
        "../../environment.yml"
    threads: lambda wildcards: config["tunings"][wildcards.tuning]["workers"]
    resources:
        mem_mb=lambda wildcards, threads: 4000 * threads,
        gpu=DEVICE_GPUS,
    params:
        args=tune_args,
        out=lambda wildcards, output: Path(output.best).parent,
    shell:
        "OMP_NUM_THREADS=1 tp tune --data results/data/{wildcards.dataset}"
        " --backbone {wildcards.backbone} --method {wildcards.method} --out {params.out}"
        " --workers {threads} --set train.threads=1 {params.args} > {log} 2>&1"
