"""SentimentDataModule: demo (offline, synthetic), IMDb (hub) or local files, tokenized and cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from lightning_green.recipe._cache import publish_dir

SOURCES = ("demo", "imdb", "files")
SPLITS = ("train", "validation", "test")
FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def _as_list(files: str | Sequence[str] | None) -> list[str]:
    if files is None:
        return []
    return [str(files)] if isinstance(files, (str, os.PathLike)) else [str(f) for f in files]


def check_data_files(train_files: Any, validation_files: Any = None, test_files: Any = None, *,
                     predict_files: Any = None, require_train: bool = True) -> None:
    """Fail fast when a local data file is missing or has an unknown format.

    Raises:
        ValueError: Names the config key (``data.train_files`` ...), the allowed formats and the value.
    """
    for key, files in (("train_files", train_files), ("validation_files", validation_files), ("test_files", test_files),
                       ("predict_files", predict_files)):
        paths = _as_list(files)
        if key == "train_files" and not paths and require_train:
            raise ValueError("`data.train_files` is required for data=files (CSV, JSON or parquet with `text` and `label` columns), got None")
        for path in paths:
            suffix = Path(path).suffix.lower()
            if suffix not in FILE_FORMATS:
                raise ValueError(f"`data.{key}`: format of {path!r} must be one of {sorted(FILE_FORMATS)}, got {suffix or 'no suffix'!r}")
            if not Path(path).is_file():
                raise ValueError(f"`data.{key}`: file not found: {path!r} (absolute: {os.path.abspath(path)})")


class SentimentDataModule(pl.LightningDataModule):
    """Binary sentiment classification data, tokenized with the model's tokenizer.

    Sources (``source``): ``"demo"`` generates synthetic reviews offline from word lists
    (:mod:`lightning_green.recipe.demo_data`); ``"imdb"`` loads ``hub_name`` from the Hugging Face
    hub; ``"files"`` reads local CSV / JSON / parquet files with ``text`` and ``label`` columns.
    Missing validation / test splits are split off the training data (seeded).

    Serving (``trainer.predict``) reads ``predict_split`` (default ``test``), or ``predict_files``
    when given (local files with a ``text`` column; a ``label`` column is optional and lets the
    recipe report the predictions' accuracy), in batches of ``predict_batch_size``.

    Tokenization runs once (``datasets.map``, batched) in :meth:`prepare_data` on local rank 0 and
    is cached under ``cache_dir`` keyed by data, tokenizer and ``max_length``; :meth:`setup` loads
    the cache on every rank. Without ``cache_dir`` each rank tokenizes in memory. Batches are
    padded per batch to their longest sequence (``DataCollatorWithPadding``).

    Args:
        source: One of ``"demo"``, ``"imdb"``, ``"files"``.
        tokenizer: A Hugging Face tokenizer; may be set later through ``.tokenizer``.
        max_length: Longest sequence in tokens; longer texts are truncated.
        batch_size: Training batch size per process; ``eval_batch_size`` defaults to it.
        subsample_fraction: Keep this fraction (0, 1] of every split (seeded).
        num_train / num_validation / num_test: Demo data sizes.
        train_files / validation_files / test_files: Local files for ``source="files"``.
        predict_split: The split served by ``trainer.predict`` when ``predict_files`` is not set.
        predict_files: Local files served by ``trainer.predict`` (any ``source``).
        predict_batch_size: Batch size of ``predict_dataloader`` (default: ``eval_batch_size``).
        validation_fraction / test_fraction: Shares split off the training data when a split is missing.
        hub_name: Hub data set for ``source="imdb"``.
        cache_dir: Where tokenized data sets are cached (``None``: no disk cache).
        seed: Seed for generation, splits and subsampling.
        num_workers: DataLoader workers.

    Example::

        dm = SentimentDataModule("demo", num_train=64, num_validation=16, num_test=16)
        texts = dm.training_texts()   # e.g. to train a tokenizer
    """

    def __init__(
        self,
        source: str = "demo",
        tokenizer: Any = None,
        *,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        subsample_fraction: float = 1.0,
        num_train: int = 8000,
        num_validation: int = 1000,
        num_test: int = 1000,
        label_noise: float = 0.05,
        train_files: str | Sequence[str] | None = None,
        validation_files: str | Sequence[str] | None = None,
        test_files: str | Sequence[str] | None = None,
        predict_split: str = "test",
        predict_files: str | Sequence[str] | None = None,
        predict_batch_size: int | None = None,
        validation_fraction: float = 0.1,
        test_fraction: float = 0.1,
        hub_name: str = "stanfordnlp/imdb",
        cache_dir: str | None = None,
        seed: int = 42,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"`data.source` must be one of {list(SOURCES)}, got {source!r}")
        for name, value in (("max_length", max_length), ("batch_size", batch_size), ("num_train", num_train),
                            ("num_validation", num_validation), ("num_test", num_test)):
            if int(value) < 1:
                raise ValueError(f"`data.{name}` must be an integer >= 1, got {value!r}")
        if not 0.0 < float(subsample_fraction) <= 1.0:
            raise ValueError(f"`data.subsample_fraction` must be in (0, 1], got {subsample_fraction!r}")
        for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < float(value) < 0.5:
                raise ValueError(f"`data.{name}` must be in (0, 0.5), got {value!r}")
        if predict_split not in SPLITS:
            raise ValueError(f"`data.predict_split` must be one of {list(SPLITS)}, got {predict_split!r}")
        if predict_batch_size is not None and (isinstance(predict_batch_size, bool) or int(predict_batch_size) < 1):
            raise ValueError(f"`inference.batch_size` must be an integer >= 1 or null, got {predict_batch_size!r}")
        if source == "files":
            check_data_files(train_files, validation_files, test_files, predict_files=predict_files)
        elif predict_files is not None:
            check_data_files(None, predict_files=predict_files, require_train=False)
        self.source = source
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.subsample_fraction = float(subsample_fraction)
        self.sizes = {"train": int(num_train), "validation": int(num_validation), "test": int(num_test)}
        self.label_noise = float(label_noise)
        self.files = {"train": _as_list(train_files), "validation": _as_list(validation_files), "test": _as_list(test_files)}
        self.predict_split = predict_split
        self.predict_files = _as_list(predict_files)
        self.predict_batch_size = None if predict_batch_size is None else int(predict_batch_size)
        self.fractions = {"validation": float(validation_fraction), "test": float(test_fraction)}
        self.hub_name = hub_name
        self.cache_dir = None if cache_dir is None else os.path.expanduser(str(cache_dir))
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self._raw: Any = None
        self.datasets: dict[str, Any] = {}

    # -- raw data ---------------------------------------------------------------------------
    def raw_splits(self) -> Any:
        """The untokenized ``DatasetDict`` with train / validation / test (``text``, ``label``)."""
        if self._raw is None:
            self._raw = self._subsample(self._load_raw())
        return self._raw

    def training_texts(self) -> list[str]:
        """Texts of the training split (what an offline tokenizer is trained on)."""
        return list(self.raw_splits()["train"]["text"])

    def _load_raw(self) -> Any:
        import datasets

        if self.source == "demo":
            from lightning_green.recipe.demo_data import generate_reviews

            return datasets.DatasetDict({
                split: datasets.Dataset.from_dict(generate_reviews(self.sizes[split], self.seed + i, self.label_noise))
                for i, split in enumerate(SPLITS)
            })
        if self.source == "imdb":
            loaded = datasets.load_dataset(self.hub_name)
            return self._complete_splits({s: loaded[s] for s in SPLITS if s in loaded})
        return self._complete_splits({split: _load_files(paths) for split, paths in self.files.items() if paths})

    def predict_raw(self) -> Any:
        """The untokenized data served by ``trainer.predict``: ``text`` (and ``label`` when known)."""
        if not self.predict_files:
            return self.raw_splits()[self.predict_split]
        ds = _load_files(self.predict_files)
        if "text" not in ds.column_names:
            raise ValueError(f"`data.predict_files`: column 'text' missing; found {ds.column_names}")
        return ds.select_columns([c for c in ("text", "label") if c in ds.column_names])

    def _complete_splits(self, splits: dict[str, Any]) -> Any:
        import datasets

        for split, ds in splits.items():
            missing = {"text", "label"} - set(ds.column_names)
            if missing:
                raise ValueError(f"`data.{split}_files`: columns {sorted(missing)} missing; need `text` and `label`, found {ds.column_names}")
            splits[split] = ds.select_columns(["text", "label"])
        for split in ("test", "validation"):
            if split not in splits:
                parts = splits["train"].train_test_split(test_size=self.fractions[split], seed=self.seed)
                splits["train"], splits[split] = parts["train"], parts["test"]
        return datasets.DatasetDict({s: splits[s] for s in SPLITS})

    def _subsample(self, raw: Any) -> Any:
        if self.subsample_fraction >= 1.0:
            return raw
        for split in SPLITS:
            n = max(1, round(len(raw[split]) * self.subsample_fraction))
            raw[split] = raw[split].shuffle(seed=self.seed).select(range(n))
        return raw

    # -- tokenization and caching -----------------------------------------------------------
    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise RuntimeError("SentimentDataModule.tokenizer is None: set it (e.g. the model's tokenizer) before fit")
        return self.tokenizer

    def _serving_files_only(self) -> bool:
        """``trainer.predict`` on ``predict_files``: the training splits are not needed."""
        return bool(self.predict_files) and bool(getattr(getattr(self, "trainer", None), "predicting", False))

    def _cache_path(self, predict_files: bool = False) -> Path | None:
        if self.cache_dir is None:
            return None
        tokenizer = self._require_tokenizer()
        backend = getattr(tokenizer, "backend_tokenizer", None)
        identity = backend.to_str() if backend is not None else repr(tokenizer)
        if predict_files:
            spec = {"predict_files": [(p, os.path.getsize(p), os.path.getmtime(p)) for p in self.predict_files],
                    "max_length": self.max_length, "tokenizer": hashlib.sha256(identity.encode()).hexdigest(), "version": 1}
            key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
            return Path(self.cache_dir) / "tokenized" / f"predict-{key}"
        files = {s: [(p, os.path.getsize(p), os.path.getmtime(p)) for p in ps] for s, ps in self.files.items()}
        spec = {
            "source": self.source, "sizes": self.sizes, "noise": self.label_noise, "files": files, "hub": self.hub_name,
            "fractions": self.fractions, "subsample": self.subsample_fraction, "seed": self.seed,
            "max_length": self.max_length, "tokenizer": hashlib.sha256(identity.encode()).hexdigest(), "version": 1,
        }
        key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return Path(self.cache_dir) / "tokenized" / key

    def _tokenize(self, raw: Any = None) -> Any:
        tokenizer = self._require_tokenizer()

        def encode(batch: dict[str, list]) -> dict[str, list]:
            return tokenizer(batch["text"], truncation=True, max_length=self.max_length)

        raw = self.raw_splits() if raw is None else raw
        return raw.map(encode, batched=True, remove_columns=["text"], desc="tokenizing")

    def _tokenize_predict_files(self) -> Any:
        return self._tokenize(self.predict_raw())

    def prepare_data(self) -> None:
        """Tokenize once and store the result under ``cache_dir`` (local rank 0 only)."""
        jobs = [(self._cache_path(predict_files=True), self._tokenize_predict_files)] if self.predict_files else []
        if not self._serving_files_only():
            jobs.append((self._cache_path(), self._tokenize))
        for path, tokenize in jobs:
            if path is not None and not path.exists():
                publish_dir(path, lambda tmp, tokenize=tokenize: tokenize().save_to_disk(tmp))

    def setup(self, stage: str | None = None) -> None:
        """Load the tokenized splits (from the cache when there is one)."""
        import datasets

        def load(path: Path | None, tokenize: Any) -> Any:
            return datasets.load_from_disk(str(path)) if path is not None and path.exists() else tokenize()

        if self.predict_files and "predict" not in self.datasets:
            self.datasets["predict"] = load(self._cache_path(predict_files=True), self._tokenize_predict_files)
        if all(split in self.datasets for split in SPLITS) or self._serving_files_only():
            return
        tokenized = load(self._cache_path(), self._tokenize)
        self.datasets.update({split: tokenized[split] for split in SPLITS})

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        from transformers import DataCollatorWithPadding

        if split not in self.datasets:
            self.setup()
        collate = DataCollatorWithPadding(self._require_tokenizer(), return_tensors="pt")
        if batch_size is None:
            batch_size = self.batch_size if split == "train" else self.eval_batch_size
        dataset = self.datasets[split]
        if "label" in dataset.column_names:
            dataset = dataset.rename_column("label", "labels")
        return DataLoader(dataset.with_format("python"), batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """``predict_files`` if given, else ``predict_split``, in batches of ``predict_batch_size``."""
        split = "predict" if self.predict_files else self.predict_split
        return self._loader(split, shuffle=False, batch_size=self.predict_batch_size or self.eval_batch_size)


def _load_files(paths: list[str]) -> Any:
    """One ``datasets.Dataset`` from local CSV / TSV / JSON / parquet files (format from the first suffix)."""
    import datasets

    suffix = Path(paths[0]).suffix.lower()
    kwargs = {"delimiter": "\t"} if suffix == ".tsv" else {}
    return datasets.load_dataset(FILE_FORMATS[suffix], data_files=paths, split="train", **kwargs)
