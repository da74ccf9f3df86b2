# Test metrics of one finished run: tp evaluate (full ranking, existing and new users, all/head/tail). Its inputs
# are ancient: a finished run's files in a fresh clone have arbitrary times and no checkpoint, and must not make
# it evaluate (or train) again; a run trained anew is still evaluated anew (its training job runs first).


rule evaluate:
    input:
        unpack(run_data),
        model=ancient(f"{RUN}/model.pt"),
        summary=ancient(f"{RUN}/train_summary.json"),
    output:
        metrics=f"{RUN}/metrics.json",
        ranks=f"{RUN}/ranks.csv.gz",
        eval_config=f"{RUN}/evaluate_config.json",
    log:
        "logs/evaluate/{study}/{dataset}/{backbone}/{variant}/seed{seed}.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=DEVICE_GPUS,
    params:
        device=config["device"],
        run=lambda wildcards, input: Path(input.summary).parent,
    shell:
        "OMP_NUM_THREADS={threads} tp evaluate --data results/data/{wildcards.dataset} --run {params.run}"
        " --out {output.metrics} --set train.device={params.device} > {log} 2>&1"
