"""Model cards (`huggingface_hub.ModelCard`) for the official releases and for checkpoints trained here.

A card is rendered from `model_card_template.md` with `ModelCard.from_template`: YAML metadata (licence, library,
pipeline tag, tags, datasets, base model and a `model-index` built from `results.json`), then the description,
the meaning of the output, intended uses, runnable snippets, training details, the evaluation table with its
protocol, and the citation. The facts (papers' numbers, licences) come from `releases`.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..configuration_depth_anything_hf import SIZE_OF_HIDDEN_SIZE, DepthAnythingHFConfig
from ..evaluation.metrics import METRIC_NAMES
from ..evaluation.reporting import METRIC_TITLES, protocol_notes, results_table
from .releases import (
    CC_BY_NC_4,
    CITATIONS,
    OFFICIAL_RELEASES,
    PAPER_URLS,
    V1_LABELED,
    V2_SYNTHETIC,
    checked_license,
    lineage_license,
)

MODEL_CARD_TEMPLATE = Path(__file__).with_name("model_card_template.md")
# Training arguments whose values must never be printed in a public card.
_SECRET_ARGUMENT_WORDS = ("token", "password", "secret", "key")


@dataclass
class CardContent:
    """Everything a model card says, independent of where it came from."""

    model_name: str
    repo_id: str
    version: str
    size: str | None
    hidden_size: int
    num_hidden_layers: int
    depth_estimation_type: str
    max_depth: float | None
    license: str
    base_model: str | None
    description: str
    training_summary: str
    evaluation_summary: str
    datasets: list[str] = field(default_factory=list)
    training_arguments: dict = field(default_factory=dict)
    evaluations: list[dict] = field(default_factory=list)
    evaluation_source: tuple[str, str] | None = None


def _eval_results(content: CardContent) -> list[EvalResult]:
    source_name, source_url = content.evaluation_source or (None, None)
    return [
        EvalResult(
            task_type="depth-estimation",
            task_name="Depth Estimation",
            dataset_type=row["dataset"],
            dataset_name=row.get("title", row["dataset"]),
            metric_type=name,
            metric_name=f"{METRIC_TITLES[name]} ({row['protocol']} protocol)",
            metric_config=row["protocol"],
            metric_value=round(float(row["metrics"][name]), 4),
            source_name=source_name,
            source_url=source_url,
        )
        for row in content.evaluations
        for name in METRIC_NAMES
        if name in row["metrics"]
    ]


def render_model_card(content: CardContent, template_path: str | Path = MODEL_CARD_TEMPLATE) -> ModelCard:
    """Fill the card template with `content`; the metadata is built with `ModelCardData`/`EvalResult`."""
    relative = content.depth_estimation_type == "relative"
    tags = ["depth-anything", f"depth-anything-{content.version}", "depth-estimation", "dinov2", "dpt", "custom_code"]
    tags.append("relative-depth" if relative else "metric-depth")
    card_data = ModelCardData(
        model_name=content.model_name,
        license=content.license,
        library_name="transformers",
        pipeline_tag="depth-estimation",
        tags=tags,
        datasets=content.datasets or None,
        base_model=content.base_model,
        eval_results=_eval_results(content) or None,
    )
    citation = CITATIONS[content.version] if content.version == "v1" else CITATIONS["v2"] + "\n\n" + CITATIONS["v1"]
    license_note = (
        "The weights are licensed CC-BY-NC-4.0: non-commercial use only."
        if content.license == CC_BY_NC_4
        else f"Licence: {content.license}."
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=content.model_name,
        repo_id=content.repo_id,
        variant_title=f"Depth Anything {content.version.upper()}" + ("" if relative else " metric"),
        encoder_title=(
            f"DINOv2 ViT-{content.size[0].upper()}/14" if content.size else "ViT/14 (non-standard width)"
        ),
        hidden_size=content.hidden_size,
        encoder_blocks=content.num_hidden_layers,
        description=content.description,
        depth_estimation_type=content.depth_estimation_type,
        max_depth=f"{content.max_depth:g}" if content.max_depth else None,
        metric_domain=", ".join(content.datasets) or "its training",
        output_description="relative disparity, larger = nearer" if relative else "depth in metres",
        license_note=license_note,
        training_summary=content.training_summary,
        training_arguments=list(content.training_arguments.items()),
        evaluation_summary=content.evaluation_summary,
        evaluation_table=results_table(content.evaluations) if content.evaluations else "",
        protocol_notes=protocol_notes(content.evaluations) if content.evaluations else "none evaluated.",
        citation=citation,
    )


def official_model_card(key: str, repo_id: str) -> ModelCard:
    """The card of an official release converted by this project, with the paper's reported numbers."""
    if key not in OFFICIAL_RELEASES:
        raise ValueError(f"Unknown official release {key!r}; known: {', '.join(OFFICIAL_RELEASES)}")
    release = OFFICIAL_RELEASES[key]
    config = DepthAnythingHFConfig.from_variant(
        release.version, release.size, release.depth_estimation_type, release.max_depth
    )
    relative = release.depth_estimation_type == "relative"
    if relative:
        training_summary = (
            (
                "Official weights released by the authors, converted to this implementation without retraining. "
                if release.hub_id
                else "The authors have not released these weights; the card describes the variant's recipe. "
            )
            + (
                "Teacher-student training: a teacher trained on 1.5M labelled images "
                f"({', '.join(V1_LABELED)}) pseudo-labels 62M unlabelled images; the student, initialised from "
                "DINOv2, learns from labelled and strongly perturbed pseudo-labelled images (1:2) with a feature "
                "alignment loss to the frozen DINOv2 encoder."
                if release.version == "v1"
                else "A ViT-G teacher trained on 595K synthetic images "
                f"({', '.join(V2_SYNTHETIC)}) pseudo-labels 62M real images; each student, initialised from "
                "DINOv2, is trained on the pseudo-labelled real images only."
            )
        )
    else:
        training_summary = (
            f"Official weights released by the authors, converted without retraining: the encoder of "
            f"`{release.base_model}` fine-tuned with a new DPT head (sigmoid x {release.max_depth:g} m) on "
            f"{release.training_datasets[0]} with the scale-invariant log (SiLog) loss."
        )
    if release.reported:
        evaluation_summary = (
            f"**Reported in the paper, not measured here**: {release.reported_source}. "
            "Run `depth-anything eval` to measure this checkpoint."
        )
    else:
        evaluation_summary = (
            "The paper reports no numbers for this released checkpoint, and none were measured here; run "
            "`depth-anything eval` to measure it."
        )
    content = CardContent(
        model_name=release.title,
        repo_id=repo_id,
        version=release.version,
        size=release.size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        depth_estimation_type=release.depth_estimation_type,
        max_depth=release.max_depth,
        license=release.license,
        base_model=release.hub_id,
        description=f"The weights are those of the official release [`{release.hub_id}`]"
        f"(https://huggingface.co/{release.hub_id})."
        if release.hub_id
        else "The authors have not released weights of this size; train them with this project.",
        training_summary=training_summary,
        evaluation_summary=evaluation_summary,
        datasets=list(release.training_datasets),
        evaluations=list(release.reported),
        evaluation_source=(
            f"Reported in the paper ({'CVPR 2024' if release.version == 'v1' else 'NeurIPS 2024'})",
            PAPER_URLS[release.version],
        )
        if release.reported
        else None,
    )
    return render_model_card(content)


def _load_json(value: dict | str | Path | None, name: str) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{name} file {path} does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


def _public_arguments(training_args: dict) -> dict:
    return {
        name: value
        for name, value in sorted(training_args.items())
        if not any(word in name.lower() for word in _SECRET_ARGUMENT_WORDS)
    }


def model_card_for_checkpoint(
    checkpoint_dir: str | Path,
    repo_id: str,
    *,
    results: dict | str | Path | None = None,
    training_args: dict | str | Path | None = None,
    base_model: str | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
) -> ModelCard:
    """The card of a checkpoint folder written by `save_pretrained`.

    Args:
        checkpoint_dir: folder with `config.json` (its `version`, sizes, `depth_estimation_type`).
        repo_id: the Hub repository the card is for (used in the snippets).
        results: results.json of `depth-anything eval` (dict or path); defaults to
            `checkpoint_dir/results.json` when present.
        training_args: the training run's arguments (dict or path); defaults to
            `checkpoint_dir/training_args.json` when present. Its `base_model` and `datasets` entries
            are used when the arguments below are not given.
        base_model: what the weights were trained from (decides the licence, see the module docstring).
        license: explicit licence; refused when the lineage requires CC-BY-NC-4.0 and this differs.
        datasets: training datasets for the metadata.
    """
    checkpoint_dir = Path(checkpoint_dir)
    config = _load_json(checkpoint_dir / "config.json", "config.json")
    if results is None and (checkpoint_dir / "results.json").is_file():
        results = checkpoint_dir / "results.json"
    if training_args is None and (checkpoint_dir / "training_args.json").is_file():
        training_args = checkpoint_dir / "training_args.json"
    results, training_args = _load_json(results, "results"), _load_json(training_args, "training_args") or {}
    version, hidden_size = config.get("version"), config.get("hidden_size")
    if version not in PAPER_URLS:
        raise ValueError(f"{checkpoint_dir / 'config.json'} must name version 'v1' or 'v2', got {version!r}")
    size = SIZE_OF_HIDDEN_SIZE.get(hidden_size)
    base_model = base_model or training_args.get("base_model")
    datasets = datasets or [name for name in training_args.get("datasets", []) if isinstance(name, str)]
    depth_estimation_type = config.get("depth_estimation_type", "relative")

    if results:
        evaluation_summary = (
            f"Measured with depth_anything_hf {results.get('code_version', '(unknown version)')} "
            f"(`depth-anything eval`) on `{results.get('model', repo_id)}`"
            f"{', with horizontal-flip averaging' if results.get('flip_average') else ''}. Metrics are computed "
            "per image and averaged over images; images with fewer than 10 valid pixels are skipped."
        )
        evaluations = results["evaluations"]
    else:
        evaluation_summary = "Not evaluated yet: run `depth-anything eval` and regenerate this card."
        evaluations = []
    training_summary = (
        "Trained with depth_anything_hf; the run's arguments follow."
        if training_args
        else "No training arguments were recorded with this checkpoint."
    )
    content = CardContent(
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        version=version,
        size=size,
        hidden_size=hidden_size,
        num_hidden_layers=config.get("num_hidden_layers"),
        depth_estimation_type=depth_estimation_type,
        max_depth=config.get("max_depth") if depth_estimation_type == "metric" else None,
        license=license
        if base_model is None and size is None and license is not None
        else checked_license(lineage_license(version, size, base_model), license),
        base_model=base_model,
        description=f"Trained from `{base_model}`." if base_model else "",
        training_summary=training_summary,
        evaluation_summary=evaluation_summary,
        datasets=datasets,
        training_arguments=_public_arguments(training_args),
        evaluations=evaluations,
    )
    return render_model_card(content)
