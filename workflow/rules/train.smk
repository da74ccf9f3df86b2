# One training run: tp train, recording its study and variant (run.json) and its resolved config. Its folder
# also receives metrics.json, ranks.csv.gz and evaluate_config.json from the evaluate rule, and the training
# job's Snakemake benchmark (benchmark.tsv: seconds, memory), so that the committed folder carries its cost.
# OMP_NUM_THREADS and train.threads follow the rule's threads, so N parallel jobs on N cores do not
# oversubscribe (profiles: set-threads). A finished run does not depend on the data at all (common.smk,
# run_data): a re-prepared dataset (same content, checked by `tp prepare`) never makes it train again.

RUN = "results/runs/{study}/{dataset}/{backbone}/{variant}/seed{seed}"


rule train:
    input:
        unpack(run_data),
    output:
        model=f"{RUN}/model.pt",
        config=f"{RUN}/config.json",
        label=f"{RUN}/run.json",
        train_log=f"{RUN}/train_log.csv",
        summary=f"{RUN}/train_summary.json",
    log:
        "logs/train/{study}/{dataset}/{backbone}/{variant}/seed{seed}.log",
    benchmark:
        f"{RUN}/benchmark.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=DEVICE_GPUS,
    params:
        method=run_method,
        sets=train_sets,
        out=lambda wildcards, output: Path(output.config).parent,
    shell:
        "OMP_NUM_THREADS={threads} tp train --data results/data/{wildcards.dataset}"
        " --backbone {wildcards.backbone} --method {params.method} --seed {wildcards.seed}"
        " --study {wildcards.study} --variant {wildcards.variant} --out {params.out}"
        " --set train.threads={threads} {params.sets} > {log} 2>&1"
