"""Serving the recipe's model: ``python train.py mode=predict ckpt_path=PATH`` (or ``predict=true``).

``trainer.predict`` runs over ``data.predict_split`` (default ``test``) or ``data.predict_files``
under the EnergyCallback. The footprint's ``extra.inference`` records the serving set-up
(checkpoint and the training run it came from, precision, quantization, batch size, compile,
pruning carried over) and what the predict phase did and cost:

- ``predictions``, ``tokens`` (real: attention-mask sum), ``padded_tokens`` (what the model
  processed: batch x longest text of the batch), ``padding_fraction``, ``accuracy`` (when the
  data has labels; also ``metrics["predict/acc"]``);
- ``energy_j`` (the predict phase: ``energy_kwh_by_phase["predict"]``, IT energy before PUE),
  ``energy_j_per_1000_predictions``, ``energy_j_per_token`` (per real token; padding is
  processed but counted apart), ``energy_j_per_padded_token``, and
  ``emissions_g_per_1000_predictions`` (with the report's PUE and carbon intensity).

Model loading, quantization and the warm-up batches (``inference.warmup_batches``, where
``inference.compile`` compiles) come before the predict phase: they are not in the
per-prediction figures (their times: ``warmup_s``, ``compile_s``).
"""

from __future__ import annotations

import io
from typing import Any

from omegaconf import DictConfig

from lightning_green.outputs.footprint import J_PER_KWH
from lightning_green.recipe.checkpoints import check_ckpt_path
from lightning_green.recipe.inference import ServingCounter, compile_transformer, quantize_dynamic_int8, validate_inference

#: Where the counts behind the per-prediction figures came from.
COUNTS_FROM_REPORT = "footprint work_by_phase.predict"
COUNTS_FROM_RECIPE = "recipe ServingCounter (predict loop batches)"


def validate_serving(cfg: DictConfig, precision: str, on_cpu: bool, devices: Any) -> dict[str, Any]:
    """Check ``mode``, ``ckpt_path``, ``predict``, ``inference.*`` and ``data.predict_*`` before any work.

    Returns:
        ``{"mode", "ckpt_path", "serve" (bool), "inference": {...}}``.

    Raises:
        ValueError: Names the key, the allowed values and the value given.
    """
    from lightning_green.recipe.data import SPLITS, check_data_files

    mode = cfg.get("mode", "fit")
    ckpt_path = check_ckpt_path(mode, cfg.get("ckpt_path"))
    after_fit = cfg.get("predict", False)
    if not isinstance(after_fit, bool):
        raise ValueError(f"predict must be one of true, false, got {after_fit!r}")
    serve = mode == "predict" or after_fit
    inference = validate_inference(cfg.get("inference"), precision, on_cpu)
    split = cfg.data.get("predict_split", "test")
    if split not in SPLITS:
        raise ValueError(f"`data.predict_split` must be one of {list(SPLITS)}, got {split!r}")
    check_data_files(None, predict_files=cfg.data.get("predict_files"), require_train=False)
    if mode == "fit" and ckpt_path is not None:
        from lightning_green.recipe.checkpoints import check_resume_pruning, read_checkpoint
        from lightning_green.recipe.pruning import validate_pruning

        check_resume_pruning(read_checkpoint(ckpt_path), *validate_pruning(cfg.pruning.get("method"), cfg.pruning.get("amount")))
    if mode == "predict" and cfg.pruning.get("method") not in (None, "none"):
        raise ValueError("mode=predict serves the checkpoint as it was trained (its pruning is carried over): "
                         f"leave `pruning` at none, got pruning.method={cfg.pruning.get('method')!r}")
    if serve and (cfg.strategy.get("name") != "auto" or devices not in ("auto", 1, "1")):
        raise ValueError("serving (mode=predict or predict=true) runs in one process: use strategy=auto and "
                         f"trainer.devices=1 or auto, got strategy={cfg.strategy.get('name')!r}, devices={devices!r}")
    return {"mode": mode, "ckpt_path": ckpt_path, "serve": serve, "inference": inference}


def start_record(energy: Any, settings: dict[str, Any]) -> tuple[dict[str, Any], ServingCounter]:
    """The footprint's ``extra.inference`` dict and the counter that fills it (put it before ``energy``)."""
    levers = settings["inference"]
    record: dict[str, Any] = {"mode": "predict" if settings["mode"] == "predict" else "fit+predict",
                              "quantization": levers["quantization"], "batch_size": levers["batch_size"],
                              "compile": levers["compile"], "compile_s": None,
                              "warmup_batches": levers["warmup_batches"], "warmup_s": None}
    energy.extra_fields.setdefault("extra", {})["inference"] = record
    metrics = energy.extra_fields.setdefault("metrics", {})
    return record, ServingCounter(record, metrics, warmup_batches=levers["warmup_batches"])


def prepare_model(model: Any, record: dict[str, Any], levers: dict[str, Any]) -> None:
    """Apply the serving levers to ``model`` (in place) and record its size and pruning."""
    from lightning_green.recipe.pruning import count_parameters, linear_weight_sparsity

    pruning = dict(model.hparams.get("pruning") or {"method": "none", "amount": None})
    pruning.update(parameters=count_parameters(model), linear_weight_sparsity=round(linear_weight_sparsity(model), 6))
    record["pruning"] = pruning
    record["parameters"] = pruning["parameters"]
    if levers["quantization"] == "dynamic_int8":
        record["quantized"] = quantize_dynamic_int8(model.model)
    record["state_dict_mb"] = round(_state_dict_bytes(model) / 1e6, 3)
    if levers["compile"]:
        compile_transformer(model)


def serve(trainer: Any, model: Any, datamodule: Any, energy: Any, record: dict[str, Any], output_dir: str) -> Any:
    """``trainer.predict`` and the footprint with the per-prediction figures; returns the report."""
    datamodule.predict_batch_size = record["batch_size"]
    record["batch_size"] = datamodule.predict_batch_size or datamodule.eval_batch_size
    record["data"] = ({"predict_files": list(datamodule.predict_files)} if datamodule.predict_files
                      else {"source": datamodule.source, "predict_split": datamodule.predict_split})
    record["data"]["max_length"] = datamodule.max_length  # texts longer than this are truncated
    record["precision"] = str(trainer.precision)
    record["device"] = str(trainer.strategy.root_device)
    trainer.predict(model, datamodule=datamodule, return_predictions=False)
    report = energy.report if trainer.is_global_zero else None
    if report is not None:
        finish_record(report, record)
        from lightning_green.outputs.footprint import write_footprint

        if energy.write_files:
            write_footprint(report, output_dir)  # again, now with the per-prediction figures
    return report


def finish_record(report: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Add the predict phase's energy and the per-prediction / per-token figures to ``record``.

    Counts come from the report's ``work_by_phase["predict"]`` when the footprint has it, else
    from the recipe's own count of the predict batches (``counts_source`` says which).
    """
    work = (getattr(report, "work_by_phase", None) or {}).get("predict")
    if work:
        record.update(batches=int(work["batches"]), predictions=int(work["samples"]), tokens=int(work["tokens"]),
                      padded_tokens=int(work["padded_tokens"]))
        record["counts_source"] = COUNTS_FROM_REPORT
    else:
        record["counts_source"] = COUNTS_FROM_RECIPE
    energy_j = float(report.energy_kwh_by_phase.get("predict", 0.0)) * J_PER_KWH
    n, tokens, padded = record.get("predictions") or 0, record.get("tokens") or 0, record.get("padded_tokens") or 0
    g_per_j = report.pue * report.carbon_intensity_g_per_kwh / J_PER_KWH
    record.update({
        "energy_j": energy_j,
        "energy_basis": "energy_kwh_by_phase.predict: IT energy before PUE, predict loop only (model loading, "
                        "quantization and warm-up batches excluded)",
        "energy_j_per_1000_predictions": energy_j / n * 1000 if n else None,
        "energy_j_per_token": energy_j / tokens if tokens else None,
        "energy_j_per_padded_token": energy_j / padded if padded else None,
        "emissions_g_per_1000_predictions": energy_j * g_per_j / n * 1000 if n else None,
    })
    if record["mode"] == "fit+predict":
        record.setdefault("training_run_id", report.run_id)
    return record


def summary(record: dict[str, Any]) -> str:
    """One line for the end-of-run summary."""
    parts = [f"Serving: {record.get('predictions', 0):,} predictions in {record.get('predict_duration_s', 0):.2f} s"]
    if record.get("accuracy") is not None:
        parts.append(f"accuracy {record['accuracy']:.4f}")
    if record.get("energy_j_per_1000_predictions") is not None:
        parts.append(f"{record['energy_j_per_1000_predictions']:.4g} J per 1,000 predictions")
    if record.get("energy_j_per_token") is not None:
        parts.append(f"{record['energy_j_per_token']:.3g} J per token ({record['tokens']:,} real, "
                     f"{record['padded_tokens']:,} with padding)")
    levers = f"precision {record.get('precision')}, quantization {record['quantization']}, batch {record['batch_size']}"
    levers += f", compiled in {record['compile_s']:.1f} s" if record.get("compile_s") is not None else ""
    return ", ".join(parts) + f" [{levers}]"


def predict(cfg: DictConfig, settings: dict[str, Any]) -> tuple[dict[str, float], Any]:
    """``mode=predict``: serve ``ckpt_path`` under an EnergyCallback; print and return the footprint.

    Returns:
        ``(metrics, report)``: ``predict/acc`` when the data has labels, and the FootprintReport.
    """
    import hydra
    import lightning.pytorch as pl

    from lightning_green.recipe.bert import load_tokenizer
    from lightning_green.recipe.checkpoints import model_from_checkpoint, read_checkpoint, training_origin
    from lightning_green.recipe.train import _energy_callback, resolve_devices, run_fields

    output_dir = str(cfg.paths.output_dir)
    energy = _energy_callback(cfg, output_dir)  # validates energy.* before any work
    checkpoint = read_checkpoint(settings["ckpt_path"])
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    model = model_from_checkpoint(checkpoint)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    tokenizer = model.tokenizer or load_tokenizer(model.hparams.get("pretrained"), datamodule.training_texts,
                                                  int(cfg.model.get("vocab_size", 8000)), cfg.paths.get("cache_dir"))
    datamodule.tokenizer = tokenizer
    energy.extra_fields.update(run_fields(cfg))
    energy.extra_fields["extra"] = {"model": {"name": model.hparams.get("pretrained") or "tiny_bert (random init)",
                                              "vocab_size": len(tokenizer), "precision_requested": cfg.precision}}
    record, counter = start_record(energy, settings)
    record.update(training_origin(checkpoint, settings["ckpt_path"]))
    record["tokenizer"] = "from the checkpoint" if model.tokenizer is not None else "rebuilt from the training data"
    del checkpoint
    prepare_model(model, record, settings["inference"])
    devices = resolve_devices(cfg)
    trainer = hydra.utils.instantiate(cfg.trainer, precision=settings["precision"], devices=1 if devices == "auto" else devices,
                                      callbacks=[counter, energy], logger=False, enable_checkpointing=False, _convert_="all")
    energy.extra_fields["extra"]["model"].update(parameters=record["parameters"], precision=str(trainer.precision))
    report = serve(trainer, model, datamodule, energy, record, output_dir)
    metrics = dict(energy.extra_fields.get("metrics") or {})
    if report is not None:
        print("\n".join([report.summary(), summary(record), f"Files: footprint.json in {output_dir}"]), flush=True)
    return metrics, report


def _state_dict_bytes(model: Any) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the weights a server would load."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()
