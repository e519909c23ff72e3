"""The BERT recipe's entry point: ``train(cfg)`` and the Hydra ``main()``.

``python train.py [overrides]`` (repository root), ``lightning-green-train [overrides]`` or
``python -m lightning_green.recipe.train [overrides]``. ``mode=predict ckpt_path=PATH`` serves a
checkpoint instead (:mod:`lightning_green.recipe.predict`). The Hydra configs ship inside the
package (``lightning_green/recipe/conf``; the repository's ``conf/`` points there), so an installed
wheel finds them from any working directory; ``LIGHTNING_GREEN_CONFIG_DIR=/path/to/conf`` or
Hydra's ``--config-dir`` point elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lightning_green.validation import check_number

PRECISIONS = {
    "32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed", "64": "64-true",
    "32-true": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed",
    "bf16-true": "bf16-true", "16-true": "16-true", "64-true": "64-true",
}
STRATEGIES = ("auto", "ddp", "ddp_spawn", "fsdp")
#: Set by rank 0 before fit: the job's overrides and run folder, for processes Lightning relaunches.
CHILD_ENV = "LIGHTNING_GREEN_HYDRA_JOB"
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _config_dir() -> str:
    here = Path(__file__).resolve().parent
    candidates = [os.environ.get("LIGHTNING_GREEN_CONFIG_DIR"), here / "conf"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train.yaml").is_file():
            return str(Path(candidate).resolve())
    return str(here / "conf")  # Hydra then says that the primary config is missing


def normalize_precision(value: Any) -> str:
    """``32``, ``"bf16"``, ``16`` ... -> Lightning's precision string (``"32-true"``, ...).

    Raises:
        ValueError: Names ``precision``, the allowed values and the value given.
    """
    key = value
    if isinstance(value, float) and value.is_integer():
        key = int(value)
    key = None if isinstance(value, bool) else str(key).strip().lower()
    if key not in PRECISIONS:
        allowed = ", ".join(["32", "bf16", "16", "64"] + [k for k in PRECISIONS if "-" in k])
        raise ValueError(f"`precision` must be one of {allowed}; got {value!r}")
    return PRECISIONS[key]


def validate_config(cfg: DictConfig) -> dict[str, Any]:
    """Check the overrides that would otherwise fail late (or silently); return normalised values.

    Raises:
        ValueError: For an unknown ``precision``, ``strategy.name``, ``pruning.method``, ``mode``,
            ``inference.*`` value, a ``pruning.amount`` outside (0, 1), missing / unreadable
            ``data.*_files``, or a missing ``ckpt_path``.
    """
    from lightning_green.recipe.data import check_data_files
    from lightning_green.recipe.predict import validate_serving
    from lightning_green.recipe.pruning import validate_pruning

    precision = normalize_precision(cfg.get("precision"))
    if "precision" in cfg.trainer:
        raise ValueError(f"set the top-level `precision` key, not `trainer.precision` (got trainer.precision={cfg.trainer.precision!r})")
    strategy = cfg.strategy.get("name")
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy.name` must be one of {list(STRATEGIES)}, got {strategy!r}")
    check_number("strategy.cpu_devices", cfg.strategy.get("cpu_devices", 1), minimum=1, integer=True)
    if strategy == "fsdp" and _on_cpu(cfg):
        raise ValueError("`strategy=fsdp` needs GPUs (Lightning's FSDP requires CUDA) and this run would use the CPU; "
                         f"on a CPU use one of {[s for s in STRATEGIES if s != 'fsdp']}")
    method, amount = validate_pruning(cfg.pruning.get("method"), cfg.pruning.get("amount"))
    serving = validate_serving(cfg, precision, _on_cpu(cfg), resolve_devices(cfg))
    if cfg.data.get("source") == "files":
        if OmegaConf.is_missing(cfg.data, "train_files"):
            raise ValueError("`data.train_files` is required for data=files (CSV, JSON or parquet files with `text` and `label` columns), got ???")
        check_data_files(cfg.data.train_files, cfg.data.get("validation_files"), cfg.data.get("test_files"))
    return {"precision": precision, "pruning_method": method, "pruning_amount": amount, **serving}


def resolve_devices(cfg: DictConfig) -> Any:
    """``trainer.devices``; ``auto`` on a machine without GPUs becomes ``strategy.cpu_devices`` processes."""
    devices = cfg.trainer.get("devices", "auto")
    if devices != "auto":
        return devices
    cpu_devices = int(cfg.strategy.get("cpu_devices", 1))
    return cpu_devices if cpu_devices > 1 and _on_cpu(cfg) else "auto"


def _on_cpu(cfg: DictConfig) -> bool:
    """Whether ``trainer.accelerator`` resolves to the CPU (``auto`` without CUDA)."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator != "auto":
        return accelerator == "cpu"
    import torch

    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _energy_callback(cfg: DictConfig, output_dir: str) -> Any:
    node = OmegaConf.to_container(cfg.energy, resolve=True)
    # For the Hydra compare callback, which reads it only after the job: check it now.
    check_number("energy.cooldown_s", node.pop("cooldown_s", None), minimum=0.0, optional=True)
    port = check_number("energy.prometheus_port", node.pop("prometheus_port", None), minimum=0, maximum=65535,
                        integer=True, optional=True)
    try:
        if port is not None:
            from lightning_green.exporters import PrometheusExporter

            node["exporters"] = [PrometheusExporter(port=port)]
        return hydra.utils.instantiate(node, output_dir=output_dir, _convert_="all")  # sensors: a list, not a ListConfig
    except Exception as err:  # name the config key: "energy.pue must be ..."
        cause = err.__cause__ if isinstance(err.__cause__, (ValueError, TypeError)) else err
        raise ValueError(_energy_message(str(cause), node.get("_target_"))) from err


def _energy_message(message: str, target: Any) -> str:
    """An EnergyCallback error with its arguments named as config keys (``energy.pue``)."""
    import inspect

    try:
        keys = [k for k in inspect.signature(hydra.utils.get_class(str(target))).parameters if k != "output_dir"]
    except Exception:  # a _target_ that is not a class: keep the message as it is
        keys = []
    unknown = re.search(r"unexpected keyword argument '(\w+)'", message)
    if unknown:
        return (f"energy.{unknown.group(1)} is not an EnergyCallback argument; the energy keys are "
                f"{keys + ['cooldown_s', 'prometheus_port']}")
    for key in keys:
        message = message.replace(f"`{key}`", f"`energy.{key}`")
        if message.startswith(f"{key} "):
            message = f"energy.{message}"
    return message if "energy." in message else f"energy: {message}"


def run_fields(cfg: DictConfig) -> dict[str, Any]:
    """The footprint's ``config`` (resolved) and ``overrides`` (the command line's)."""
    config = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
              for key in cfg if key != "hydra"}  # compose(return_hydra_config=True) keeps a `hydra` node
    return {"config": config, "overrides": _overrides()}


def _summary(report: Any, metrics: dict[str, float], output_dir: str, pruning: dict[str, Any]) -> str:
    lines = [report.summary() if report is not None else "lightning-green: no footprint report (see warnings)"]
    quality = ", ".join(f"{name} {metrics[key]:.4f}" for key, name in (("val/acc", "accuracy"), ("val/f1", "F1"),
                                                                       ("val/loss", "loss")) if key in metrics)
    if quality:
        lines.append(f"Validation: {quality}")
    if pruning.get("method") not in (None, "none"):
        lines.append(f"Pruning: {pruning['method']} amount={pruning['amount']}: parameters "
                     f"{pruning['parameters_before']:,} -> {pruning.get('parameters_after', 0):,}, "
                     f"Linear-weight sparsity {pruning.get('sparsity', 0.0):.2f}")
    files = [n for n in ("footprint.json", "emissions.csv", "steps.csv") if (Path(output_dir) / n).exists()]
    lines.append(f"Files: {', '.join(files) or 'none'} in {os.path.abspath(output_dir)}")
    return "\n".join(lines)


@contextlib.contextmanager
def _launcher_scope(output_dir: str) -> Iterator[None]:
    """Let Lightning relaunch this script for ranks > 0, and clean up after it for the next job.

    The relaunched processes learn which job they join from ``CHILD_ENV`` (see :func:`child_argv`).
    Lightning's launcher leaves ``LOCAL_RANK``, ``MASTER_PORT``, ... in this process's environment
    and the process group open; the next job of a multirun would then neither launch its own
    ranks nor connect to live ones, so both are undone when this process was the launcher.
    """
    launcher = "LOCAL_RANK" not in os.environ
    saved = {key: os.environ.get(key) for key in (*_LAUNCH_ENV, CHILD_ENV)}
    os.environ[CHILD_ENV] = json.dumps({"overrides": _overrides(), "output_dir": os.path.abspath(output_dir)})
    try:
        yield
    finally:
        for key, value in saved.items():
            if key == CHILD_ENV or launcher:
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        if launcher:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


def train(cfg: DictConfig) -> tuple[dict[str, float], Any]:
    """Fine-tune the configured classifier under an EnergyCallback and print the summary.

    ``mode=predict`` serves ``ckpt_path`` instead (:func:`lightning_green.recipe.predict.predict`);
    with ``mode=fit``, ``ckpt_path`` resumes training (the footprint continues) and
    ``predict=true`` serves the trained model at the end.

    Returns:
        ``(metrics, report)``: ``trainer.callback_metrics`` as floats and the FootprintReport
        (``None`` on ranks other than 0).
    """
    import lightning.pytorch as pl

    from lightning_green.recipe.bert import load_tokenizer
    from lightning_green.recipe.checkpoints import checkpoint_callback
    from lightning_green.recipe.predict import prepare_model, serve, start_record
    from lightning_green.recipe.predict import summary as serving_summary
    from lightning_green.recipe.pruning import apply_pruning, count_parameters

    settings = validate_config(cfg)
    if settings["mode"] == "predict":
        from lightning_green.recipe.predict import predict

        return predict(cfg, settings)
    output_dir = str(cfg.paths.output_dir)
    energy = _energy_callback(cfg, output_dir)  # validates energy.* before any data or model work
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    tokenizer = load_tokenizer(cfg.model.get("pretrained"), datamodule.training_texts,
                               int(cfg.model.get("vocab_size", 8000)), cfg.paths.get("cache_dir"))
    datamodule.tokenizer = tokenizer
    model = hydra.utils.instantiate(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id or 0,
                                    _convert_="all")
    model.attach_tokenizer(tokenizer)  # checkpoints carry it, so that they can be served alone
    pruning_callbacks, pruning = apply_pruning(model, settings["pruning_method"], settings["pruning_amount"])

    energy.extra_fields.update(run_fields(cfg), extra={
        "pruning": pruning,
        "model": {"name": cfg.model.get("pretrained") or "tiny_bert (random init)", "parameters": count_parameters(model),
                  "vocab_size": len(tokenizer), "precision_requested": cfg.precision, "precision": settings["precision"]},
    })
    serving = start_record(energy, settings) if settings["serve"] else None
    callbacks = [*pruning_callbacks, *([serving[1]] if serving else []), energy]
    if cfg.trainer.get("enable_checkpointing"):
        callbacks.append(checkpoint_callback(cfg.get("checkpoint") or {}))  # epoch0-step10.ckpt: no '=' for Hydra
    logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = hydra.utils.instantiate(cfg.trainer, precision=settings["precision"], devices=resolve_devices(cfg),
                                      callbacks=callbacks, logger=logger, _convert_="all")
    energy.extra_fields["extra"]["model"]["precision"] = str(trainer.precision)  # 16-mixed on a CPU runs as bf16-mixed
    with _launcher_scope(output_dir):
        trainer.fit(model, datamodule=datamodule, ckpt_path=settings["ckpt_path"])
        if cfg.get("test"):
            trainer.test(model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    if serving:  # trainer.predict clears callback_metrics: the footprint keeps the fit's through extra_fields
        energy.extra_fields["metrics"].update(metrics)
        prepare_model(model, serving[0], settings["inference"])
        serve(trainer, model, datamodule, energy, serving[0], output_dir)
        metrics.update(energy.extra_fields["metrics"])
    report = energy.report if trainer.is_global_zero else None
    if trainer.is_global_zero:
        print(_summary(report, metrics, output_dir, pruning), flush=True)
        if serving:
            print(serving_summary(serving[0]), flush=True)
    return metrics, report


def child_argv(argv: list[str], environ: Any = os.environ) -> list[str] | None:
    """The command line for a process Lightning relaunched for rank > 0, or ``None`` to keep argv.

    Lightning re-runs the script with the parent's argv (``-m`` and whole sweeps included) plus
    ``hydra.run.dir`` of the parent. Such a process instead runs exactly the parent's job, as a
    single run in the parent's job folder, and writes nothing there: no ``.hydra`` folder, no
    log file (``hydra/job_logging=none``), and the EnergyCallback writes on rank 0 only.
    """
    spec = environ.get(CHILD_ENV)
    local_rank = environ.get("LOCAL_RANK", "0")
    if not spec or local_rank in ("", "0"):
        return None
    job = json.loads(spec)
    return [argv[0], *job["overrides"], f"hydra.run.dir={json.dumps(job['output_dir'])}", "hydra.output_subdir=null",
            "hydra/job_logging=none", "hydra/hydra_logging=none"]


def _task(cfg: DictConfig) -> tuple[float, float]:
    """The Hydra task: ``(validation metric, energy)``, the objectives of a search (recipe/search.py)."""
    from lightning_green.recipe.search import objectives

    return objectives(cfg, *train(cfg))


def main() -> None:
    """Console entry point (``lightning-green-train``) and ``python train.py``."""
    argv = child_argv(sys.argv)
    if argv is not None:
        sys.argv[:] = argv
    hydra.main(version_base="1.3", config_path=_config_dir(), config_name="train")(_task)()


if __name__ == "__main__":
    main()
