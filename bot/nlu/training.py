"""Training: examples → intent classifier → one saved spaCy pipeline per language.

* :func:`train_nlu` — from ``(text, intent, lang)`` examples;
* :func:`train_from_knowledge` — from a knowledge folder's ``intents.yaml`` + ``catalog.yaml``;
* :func:`train_if_changed` — retrain only when those files (or the embedder) changed, judged by
  a fingerprint stored in the manifest (``klartext reindex`` calls it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import NLUError
from bot.nlu.classifier import ClassifierConfig, IntentClassifier, train_classifier
from bot.nlu.entities import DEFAULT_ORDER_PATTERN, ProductName
from bot.nlu.finetune import ENCODER_DIR, FinetuneConfig
from bot.nlu.pipeline import MANIFEST, read_manifest
from retrieval.types import Embedder, Vectors

NLU_FORMAT = 3  # 2: kNN + margin out-of-scope rule; 3: kNN standardised per intent
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainReport:
    """What a training run produced."""

    out_dir: str
    languages: list[str]
    intents: list[str]
    n_examples: int
    n_oos_examples: int
    embedder: str
    train_s: float
    oos_threshold: float
    cv_accuracy: float
    products: int = 0
    fingerprint: str = ""
    stats: dict[str, float] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)  # empty: encoder not fine-tuned

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_intent_classifier(
    examples: Sequence[tuple[str, str, str]],
    embedder: Embedder,
    *,
    oos_examples: Sequence[tuple[str, str]] = (),
    config: ClassifierConfig | None = None,
    progress: Progress | None = None,
    vectors: Vectors | None = None,
    fold_vectors: Sequence[Vectors] | None = None,
) -> IntentClassifier:
    """Embed the examples (unless ``vectors`` are given) and fit the classifier (no saving) —
    what the bot and eval share. ``fold_vectors``: see :func:`train_classifier`."""
    say = progress or (lambda _msg: None)
    texts = [t for t, _, _ in examples]
    if vectors is None:
        say(f"embedding {len(texts)} examples with {embedder.name}")
        vectors = embedder.embed(texts, kind="query")
    oos_texts = [t for t, _ in oos_examples]
    oos_vectors = embedder.embed(oos_texts, kind="query") if oos_texts else None
    say("fitting intent classifier (cross-validated out-of-scope threshold)")
    return train_classifier(
        texts,
        [i for _, i, _ in examples],
        vectors,
        oos_texts=oos_texts,
        oos_vectors=oos_vectors,
        config=config,
        fold_vectors=fold_vectors,
    )


def _atomic_replace(tmp: Path, out_dir: Path) -> None:
    backup = out_dir.with_name(out_dir.name + ".old")
    if backup.exists():
        shutil.rmtree(backup)
    if out_dir.exists():
        out_dir.rename(backup)
    tmp.rename(out_dir)
    if backup.exists():
        shutil.rmtree(backup)


def train_nlu(
    examples: Sequence[tuple[str, str, str]],
    out_dir: Path,
    *,
    embedder: Embedder | None,
    oos_examples: Sequence[tuple[str, str]] = (),
    products: Sequence[ProductName] = (),
    order_pattern: str = DEFAULT_ORDER_PATTERN,
    languages: Sequence[str] = ("en", "de"),
    config: ClassifierConfig | None = None,
    fingerprint: str = "",
    embedder_spec: str | None = None,
    progress: Progress | None = None,
    finetune: FinetuneConfig | None = None,
) -> TrainReport:
    """Train from ``(text, intent, lang)`` examples (``oos_examples``: ``(text, lang)``) and
    save to ``out_dir`` (replaced atomically). No examples → entity-only pipelines. With
    ``finetune``, the sentence encoder (all-MiniLM-L6-v2) is first fine-tuned on the examples
    (:mod:`bot.nlu.finetune`), saved in ``<out_dir>/encoder/`` and used instead of ``embedder``
    at parse time."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".nlu-", dir=out_dir.parent))
    try:
        report = _train_into(
            tmp,
            examples,
            out_dir,
            embedder=embedder,
            oos_examples=oos_examples,
            products=products,
            order_pattern=order_pattern,
            languages=languages,
            config=config,
            fingerprint=fingerprint,
            embedder_spec=embedder_spec,
            say=progress or (lambda _msg: None),
            finetune=finetune,
            start=start,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _atomic_replace(tmp, out_dir)
    return report


def _fit(
    tmp: Path,
    examples: Sequence[tuple[str, str, str]],
    embedder: Embedder,
    oos_examples: Sequence[tuple[str, str]],
    config: ClassifierConfig | None,
    finetune: FinetuneConfig | None,
    say: Progress,
) -> tuple[IntentClassifier, str, dict[str, Any]]:
    """(classifier, embedder name for parsing, fine-tune report) — fine-tuning first if asked."""
    vectors: Vectors | None = None
    fold_vectors: list[Vectors] | None = None
    fit_embedder, ft_report = embedder, {}
    if finetune is not None:
        from bot.nlu.classifier import cv_folds
        from bot.nlu.finetune import (
            FinetunedEmbedder,
            crossfit_vectors,
            finetune_encoder,
            save_encoder,
        )

        texts, intents = [t for t, _, _ in examples], [i for _, i, _ in examples]
        say("fine-tuning the sentence encoder on the intents")
        result = finetune_encoder(texts, intents, finetune, progress=say)
        folds = cv_folds(intents, config) if len(texts) <= finetune.crossfit_max_examples else []
        if folds:
            say(f"fine-tuning {len(folds)} fold encoders (out-of-scope calibration)")
            fold_vectors = crossfit_vectors(
                texts, intents, [[int(i) for i in f] for f in folds], finetune
            )
        name = save_encoder(result.model, tmp / ENCODER_DIR)
        fit_embedder, vectors = FinetunedEmbedder(tmp / ENCODER_DIR, name=name), result.vectors
        ft_report = {
            **asdict(finetune),
            "steps": result.steps,
            "finetune_s": round(result.train_s, 2),
            "loss_first": round(result.loss_first, 4),
            "loss_last": round(result.loss_last, 4),
            "crossfit_folds": len(fold_vectors or []),
        }
    try:
        clf = fit_intent_classifier(
            examples,
            fit_embedder,
            oos_examples=oos_examples,
            config=config,
            progress=say,
            vectors=vectors,
            fold_vectors=fold_vectors,
        )
    except ValueError as exc:
        raise NLUError(f"intent training failed: {exc}") from exc
    return clf, fit_embedder.name, ft_report


def _train_into(
    tmp: Path,
    examples: Sequence[tuple[str, str, str]],
    out_dir: Path,
    *,
    embedder: Embedder | None,
    oos_examples: Sequence[tuple[str, str]],
    products: Sequence[ProductName],
    order_pattern: str,
    languages: Sequence[str],
    config: ClassifierConfig | None,
    fingerprint: str,
    embedder_spec: str | None,
    say: Progress,
    finetune: FinetuneConfig | None,
    start: float,
) -> TrainReport:
    from bot.nlu.components import intent_component, make_pipeline

    clf: IntentClassifier | None = None
    parse_embedder = embedder.name if embedder is not None else ""
    ft_report: dict[str, Any] = {}
    if examples:
        if embedder is None:
            raise NLUError("training intents needs an embedder")
        clf, parse_embedder, ft_report = _fit(
            tmp, examples, embedder, oos_examples, config, finetune, say
        )
    langs = list(dict.fromkeys(languages))
    for lang in langs:
        say(f"saving {lang} pipeline")
        nlp = make_pipeline(lang, products=products, order_pattern=order_pattern)
        intent_component(nlp).classifier = clf
        nlp.to_disk(tmp / lang)
    report = TrainReport(
        out_dir=str(out_dir),
        languages=langs,
        intents=[label for label in clf.labels if not label.startswith("__")] if clf else [],
        n_examples=len(examples),
        n_oos_examples=len(oos_examples),
        embedder=parse_embedder,
        train_s=round(time.perf_counter() - start, 2),
        oos_threshold=clf.oos_threshold if clf else 0.0,
        cv_accuracy=clf.stats.get("cv_accuracy", 0.0) if clf else 0.0,
        products=len(products),
        fingerprint=fingerprint,
        stats=dict(clf.stats) if clf else {},
        finetune=ft_report,
    )
    manifest = {
        "format": NLU_FORMAT,
        "languages": langs,
        "has_intents": clf is not None,
        "embedder": report.embedder,
        "embedder_spec": embedder_spec,
        "base_embedder": embedder.name if embedder is not None else "",
        "encoder": ENCODER_DIR if ft_report else None,
        "fingerprint": fingerprint,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "report": report.as_dict(),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    return report


# ---- knowledge folders --------------------------------------------------------------------
def knowledge_fingerprint(
    knowledge_dir: Path, embedder_name: str = "", finetune: FinetuneConfig | None = None
) -> str:
    """sha256 over intents.yaml, catalog.yaml, the embedder name, the NLU format and the
    encoder fine-tune settings (if any)."""
    h = hashlib.sha256(f"nlu-format-{NLU_FORMAT}|{embedder_name}|".encode())
    if finetune is not None:
        h.update(json.dumps(asdict(finetune), sort_keys=True).encode())
    for name in ("intents.yaml", "catalog.yaml"):
        path = Path(knowledge_dir) / name
        h.update(name.encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<absent>")
    return h.hexdigest()


def knowledge_training_data(
    knowledge_dir: Path,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], list[ProductName], list[str]]:
    """(examples, oos examples, products, languages) from a knowledge folder's bot files."""
    from knowledge.botfiles import CATALOG_FILE, INTENTS_FILE, load_catalog, load_intents

    intents_path = Path(knowledge_dir) / INTENTS_FILE
    catalog_path = Path(knowledge_dir) / CATALOG_FILE
    examples: list[tuple[str, str, str]] = []
    oos: list[tuple[str, str]] = []
    langs: list[str] = []
    if intents_path.is_file():
        parsed = load_intents(intents_path)
        examples = [(e.text, e.intent, e.lang) for e in parsed.examples]
        oos = [(e.text, e.lang) for e in parsed.out_of_scope]
        langs = sorted(parsed.languages)
    products = [
        ProductName(p.name, tuple(p.aliases))
        for p in (load_catalog(catalog_path) if catalog_path.is_file() else [])
    ]
    return examples, oos, products, langs


def train_from_knowledge(
    knowledge_dir: Path,
    out_dir: Path,
    *,
    embedder: Embedder | None,
    languages: Sequence[str] = ("en", "de"),
    order_pattern: str = DEFAULT_ORDER_PATTERN,
    config: ClassifierConfig | None = None,
    embedder_spec: str | None = None,
    progress: Progress | None = None,
    finetune: str = "off",
) -> TrainReport:
    """Train from ``knowledge_dir``'s intents.yaml (+ ``out_of_scope``) and catalog.yaml.
    ``finetune``: ``auto`` | ``on`` | ``off`` (:func:`bot.nlu.finetune.finetune_config`)."""
    from bot.nlu.finetune import finetune_config

    examples, oos, products, _file_langs = knowledge_training_data(knowledge_dir)
    ft = finetune_config(finetune, embedder.name if embedder else "")
    return train_nlu(
        examples,
        out_dir,
        embedder=embedder,
        oos_examples=oos,
        products=products,
        order_pattern=order_pattern,
        languages=languages,
        config=config,
        fingerprint=knowledge_fingerprint(knowledge_dir, embedder.name if embedder else "", ft),
        embedder_spec=embedder_spec,
        progress=progress,
        finetune=ft,
    )


def train_if_changed(
    knowledge_dir: Path,
    out_dir: Path,
    *,
    embedder_factory: Callable[[], Embedder],
    languages: Sequence[str] = ("en", "de"),
    order_pattern: str = DEFAULT_ORDER_PATTERN,
    progress: Progress | None = None,
    finetune: str = "off",
) -> bool:
    """Retrain when intents.yaml/catalog.yaml/embedder/fine-tune settings changed or no model
    exists; True if it trained. The embedder is only built when training is needed."""
    from bot.nlu.finetune import finetune_config

    try:
        manifest = read_manifest(out_dir)
        trained_with = str(manifest.get("base_embedder") or manifest.get("embedder") or "")
        stored = manifest.get("fingerprint")
        same_langs = manifest.get("languages") == list(dict.fromkeys(languages))
    except NLUError:
        trained_with, stored, same_langs = "", None, False
    ft = finetune_config(finetune, trained_with)
    if stored and same_langs and stored == knowledge_fingerprint(knowledge_dir, trained_with, ft):
        return False
    embedder = embedder_factory()
    train_from_knowledge(
        knowledge_dir,
        out_dir,
        embedder=embedder,
        languages=languages,
        order_pattern=order_pattern,
        progress=progress,
        finetune=finetune,
    )
    return True


def train_if_changed_for(
    settings: Settings, knowledge_dir: Path, embedder_factory: Callable[[], Embedder]
) -> bool:
    """:func:`train_if_changed` with the configured languages, order pattern and NLU folder."""
    return train_if_changed(
        knowledge_dir,
        settings.nlu_dir,
        embedder_factory=embedder_factory,
        languages=list(settings.languages),
        order_pattern=settings.order_number_pattern,
        finetune=settings.nlu_finetune,
    )
