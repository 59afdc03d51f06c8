"""Hub model cards and publishing (`depth-anything push-to-hub`).

A card is rendered from `model_card_template.md` with `huggingface_hub.ModelCard.from_template`:
YAML metadata (licence, library, pipeline tag, tags, datasets, base model and a `model-index` built
from `results.json`), then the description, the meaning of the output, intended uses, runnable
snippets, training details, the evaluation table with its protocol, and the citation.

Licence rule (METHOD.md): the official V1 weights (all sizes) and V2-Small are Apache-2.0, V2
Base/Large/Giant are CC-BY-NC-4.0, and a checkpoint fine-tuned from weights inherits their licence.
The lineage is read from `base_model` (an official Hub id, a DINOv2 id, or a local checkpoint folder
with its own card); without one the variant's official licence is assumed, which is the
conservative reading for converted and fine-tuned weights. Weights trained here from DINOv2
(Apache-2.0) say so with `base_model="facebook/dinov2-<size>"`.
"""

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from .configuration_depth_anything_hf import DepthAnythingHFConfig
from .evaluation.metrics import METRIC_NAMES
from .evaluation.reporting import METRIC_TITLES, protocol_notes, results_table

MODEL_CARD_TEMPLATE = Path(__file__).with_name("model_card_template.md")
APACHE_2 = "apache-2.0"
CC_BY_NC_4 = "cc-by-nc-4.0"
PAPER_URLS = {"v1": "https://arxiv.org/abs/2401.10891", "v2": "https://arxiv.org/abs/2406.09414"}
CITATIONS = {
    "v1": """@inproceedings{depthanything,
  title={Depth Anything: Unleashing the Power of Large-Scale Unlabeled Data},
  author={Yang, Lihe and Kang, Bingyi and Huang, Zilong and Xu, Xiaogang and Feng, Jiashi and Zhao, Hengshuang},
  booktitle={CVPR},
  year={2024}
}""",
    "v2": """@article{depth_anything_v2,
  title={Depth Anything V2},
  author={Yang, Lihe and Kang, Bingyi and Huang, Zilong and Zhao, Zhen and Xu, Xiaogang and Feng, Jiashi and Zhao, Hengshuang},
  journal={arXiv:2406.09414},
  year={2024}
}""",
}
SIZE_OF_HIDDEN_SIZE = {384: "small", 768: "base", 1024: "large", 1536: "giant"}
DINOV2_IDS = {size: f"facebook/dinov2-{size}" for size in SIZE_OF_HIDDEN_SIZE.values()}
# Files of a checkpoint folder that are published; anything else (optimizer state, logs, results.json,
# training_args.json) stays local.
CONFIG_FILES = ("config.json", "preprocessor_config.json")
SAFETENSORS_INDEX = "model.safetensors.index.json"
CARD_FILE = "README.md"
# Training arguments whose values must never be printed in a public card.
_SECRET_ARGUMENT_WORDS = ("token", "password", "secret", "key")

V1_LABELED = ("BlendedMVS", "DIML", "HRWSI", "IRS", "MegaDepth", "TartanAir")
V2_SYNTHETIC = ("BlendedMVS", "Hypersim", "IRS", "TartanAir", "Virtual KITTI 2")
UNLABELED = (
    "SA-1B", "Open Images V7", "BDD100K", "Google Landmarks v2", "ImageNet-21K", "LSUN", "Objects365", "Places365"
)


def variant_license(version: str, size: str) -> str:
    """Licence of the official weights of a variant (METHOD.md): V1 and V2-Small Apache-2.0, else CC-BY-NC-4.0."""
    if version not in PAPER_URLS:
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
    if size not in DINOV2_IDS:
        raise ValueError(f"size must be one of {list(DINOV2_IDS)}, got {size!r}")
    return APACHE_2 if version == "v1" or size == "small" else CC_BY_NC_4


@dataclass(frozen=True)
class OfficialRelease:
    """A released Depth Anything checkpoint and what its paper reports for it.

    `reported` rows use the results.json layout (`dataset`, `title`, `protocol`, `metrics`); they are
    the paper's numbers, never measurements of this project.
    """

    key: str
    title: str
    hub_id: str | None
    version: str
    size: str
    base_model: str
    training_datasets: tuple[str, ...]
    depth_estimation_type: str = "relative"
    max_depth: float | None = None
    reported: tuple[dict, ...] = ()
    reported_source: str = ""

    @property
    def license(self) -> str:
        return variant_license(self.version, self.size)


_REPORTED_TITLES = {
    "kitti": "KITTI", "nyu": "NYU Depth v2", "sintel": "Sintel", "ddad": "DDAD", "eth3d": "ETH3D", "diode": "DIODE"
}


def _reported(values_of_dataset: dict[str, tuple[float, ...]]) -> tuple[dict, ...]:
    """Zero-shot rows (authors' disparity protocol) from {dataset key: (AbsRel[, delta1])}."""
    return tuple(
        {
            "dataset": dataset,
            "title": _REPORTED_TITLES[dataset],
            "protocol": "disparity",
            "metrics": dict(zip(("abs_rel", "delta1"), values)),
        }
        for dataset, values in values_of_dataset.items()
    )


_V1_SOURCE = "the zero-shot relative depth table of Yang et al., CVPR 2024, also listed in the official README"
_V2_SOURCE = "Table 2 of Yang et al., NeurIPS 2024 (zero-shot relative depth)"
_V2_PARTIAL = (
    "; only the cells checked against the paper text are listed, see the paper for the complete table"
)


# Zero-shot relative depth reported in the papers, {size: {dataset: (AbsRel[, delta1])}}.
_V1_REPORTED = {
    "small": {"kitti": (0.080, 0.936), "nyu": (0.053, 0.972), "sintel": (0.464, 0.739), "ddad": (0.247, 0.768),
              "eth3d": (0.127, 0.885), "diode": (0.076, 0.939)},
    "base": {"kitti": (0.080, 0.939), "nyu": (0.046, 0.979), "sintel": (0.432, 0.756), "ddad": (0.232, 0.786),
             "eth3d": (0.126, 0.884), "diode": (0.069, 0.946)},
    "large": {"kitti": (0.076, 0.947), "nyu": (0.043, 0.981), "sintel": (0.458, 0.760), "ddad": (0.230, 0.789),
              "eth3d": (0.127, 0.882), "diode": (0.066, 0.952)},
}
_V2_REPORTED = {
    "small": {"kitti": (0.078, 0.936), "nyu": (0.053, 0.973), "sintel": (0.500, 0.718), "eth3d": (0.142, 0.851),
              "diode": (0.073, 0.942)},
    "base": {"kitti": (0.078,), "nyu": (0.049,)},
    "large": {"kitti": (0.074,), "nyu": (0.045,), "sintel": (0.487,)},
    "giant": {},
}


def _official_releases() -> dict[str, OfficialRelease]:
    releases = [
        OfficialRelease(
            f"v1-{size}", f"Depth Anything V1 {size.title()}", f"LiheYoung/depth-anything-{size}-hf", "v1", size,
            DINOV2_IDS[size], V1_LABELED + UNLABELED, reported=_reported(values), reported_source=_V1_SOURCE,
        )
        for size, values in _V1_REPORTED.items()
    ]
    releases += [
        OfficialRelease(
            f"v2-{size}", f"Depth Anything V2 {size.title()}",
            # The authors list the Giant weights as not released: no Hub id.
            None if size == "giant" else f"depth-anything/Depth-Anything-V2-{size.title()}-hf", "v2", size,
            DINOV2_IDS[size], V2_SYNTHETIC + UNLABELED, reported=_reported(values),
            reported_source=_V2_SOURCE if size == "small" else _V2_SOURCE + _V2_PARTIAL,
        )
        for size, values in _V2_REPORTED.items()
    ]
    for size in ("small", "base", "large"):
        for domain, dataset, max_depth in (("Indoor", "Hypersim", 20.0), ("Outdoor", "Virtual KITTI 2", 80.0)):
            releases.append(
                OfficialRelease(
                    f"v2-metric-{domain.lower()}-{size}",
                    f"Depth Anything V2 Metric {domain} {size.title()}",
                    f"depth-anything/Depth-Anything-V2-Metric-{domain}-{size.title()}-hf",
                    "v2", size, f"depth-anything/Depth-Anything-V2-{size.title()}-hf", (dataset,),
                    depth_estimation_type="metric", max_depth=max_depth,
                )
            )
    return {release.key: release for release in releases}


OFFICIAL_RELEASES = _official_releases()
_RELEASE_OF_HUB_ID = {release.hub_id: release for release in OFFICIAL_RELEASES.values() if release.hub_id}


def lineage_license(version: str, size: str | None, base_model: str | None = None) -> str:
    """Licence a checkpoint must carry given what it was trained from (see the module docstring).

    Args:
        version, size: the checkpoint's variant (size None for a non-standard width).
        base_model: an official Hub id, a DINOv2 id, a local checkpoint folder with a README.md card,
            or None (the variant's official licence).
    """
    if base_model is None:
        if size is None:
            raise ValueError(
                "A checkpoint of non-standard width has no official licence to inherit: pass base_model= "
                "(what it was trained from) or license="
            )
        return variant_license(version, size)
    if base_model in _RELEASE_OF_HUB_ID:
        return _RELEASE_OF_HUB_ID[base_model].license
    if base_model in DINOV2_IDS.values():
        return APACHE_2
    card_path = Path(base_model) / CARD_FILE
    if card_path.is_file():
        license_of_base = ModelCard.load(card_path).data.license
        if license_of_base:
            return license_of_base
    raise ValueError(
        f"Cannot tell the licence of base_model {base_model!r}: it is neither an official Depth Anything or "
        "DINOv2 Hub id nor a local folder whose README.md declares a licence; pass license= explicitly"
    )


def _checked_license(lineage: str, requested: str | None) -> str:
    if requested is None or requested == lineage:
        return lineage
    if lineage == CC_BY_NC_4:
        raise ValueError(
            f"The weights derive from CC-BY-NC-4.0 weights (V2 Base/Large/Giant) and must keep that licence, "
            f"not {requested!r}"
        )
    return requested


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
        else _checked_license(lineage_license(version, size, base_model), license),
        base_model=base_model,
        description=f"Trained from `{base_model}`." if base_model else "",
        training_summary=training_summary,
        evaluation_summary=evaluation_summary,
        datasets=datasets,
        training_arguments=_public_arguments(training_args),
        evaluations=evaluations,
    )
    return render_model_card(content)


def _remote_code_modules(auto_map: dict) -> set[str]:
    """Module names referenced by an `auto_map` ("module.Class", a [slow, fast] pair, or a {backend: ...} map)."""
    modules = set()
    for reference in auto_map.values():
        if isinstance(reference, dict):
            reference = list(reference.values())
        for class_reference in reference if isinstance(reference, (list, tuple)) else [reference]:
            if class_reference:
                modules.add(class_reference.split("--")[-1].rsplit(".", 1)[0])
    return modules


def files_to_upload(checkpoint_dir: str | Path) -> list[str]:
    """Names of the checkpoint files that are published (weights, configs, remote code), sorted.

    The card (README.md) is generated and added by `stage_for_hub`.

    Raises:
        ValueError when safetensors weights, a config, the processor config or a remote-code module
        named by an `auto_map` is missing.
    """
    from transformers.dynamic_module_utils import get_relative_import_files

    checkpoint_dir = Path(checkpoint_dir)
    weights = sorted(path.name for path in checkpoint_dir.glob("*.safetensors"))
    if not weights:
        raise ValueError(
            f"{checkpoint_dir} has no .safetensors weights; save the model with save_pretrained (safetensors is "
            "the default) before publishing"
        )
    missing = [name for name in CONFIG_FILES if not (checkpoint_dir / name).is_file()]
    if missing:
        raise ValueError(f"{checkpoint_dir} lacks {missing}: save the model and its image processor there")
    modules = set()
    for name in CONFIG_FILES:
        modules |= _remote_code_modules(json.loads((checkpoint_dir / name).read_text()).get("auto_map", {}))
    if not modules:
        raise ValueError(
            f"{checkpoint_dir}/config.json has no auto_map: import depth_anything_hf before save_pretrained so that "
            "the self-contained code is saved with the weights"
        )
    code_files = set()
    for module in modules:
        module_file = checkpoint_dir / f"{module}.py"
        if not module_file.is_file():
            raise ValueError(f"{checkpoint_dir} lacks {module_file.name}, named by an auto_map")
        code_files |= {Path(path).name for path in [module_file, *get_relative_import_files(module_file)]}
    index = [SAFETENSORS_INDEX] if (checkpoint_dir / SAFETENSORS_INDEX).is_file() else []
    return sorted([*weights, *index, *CONFIG_FILES, *code_files])


def stage_for_hub(
    checkpoint_dir: str | Path, output_dir: str | Path, repo_id: str, card: ModelCard | None = None, **card_kwargs
) -> list[str]:
    """Copy exactly what would be uploaded into `output_dir` and write the card as README.md.

    Args:
        checkpoint_dir: a `save_pretrained` folder.
        output_dir: destination (created; a local stand-in for the Hub repository).
        repo_id: the Hub repository id the card refers to.
        card: a ready card; by default `model_card_for_checkpoint(checkpoint_dir, repo_id, **card_kwargs)`.

    Returns:
        The sorted names of the files in `output_dir`.
    """
    checkpoint_dir, output_dir = Path(checkpoint_dir), Path(output_dir)
    names = files_to_upload(checkpoint_dir)
    card = card if card is not None else model_card_for_checkpoint(checkpoint_dir, repo_id, **card_kwargs)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(checkpoint_dir / name, output_dir / name)
    card.save(output_dir / CARD_FILE)
    return sorted([*names, CARD_FILE])


def push_to_hub(
    checkpoint_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload Depth Anything checkpoint",
    api: HfApi | None = None,
    **card_kwargs,
):
    """Publish a checkpoint: `create_repo` then one `upload_folder` commit of the staged files.

    Args:
        checkpoint_dir, repo_id: as in `stage_for_hub`.
        private: create the repository private.
        token: Hub token (default: the logged-in one).
        commit_message: the commit message.
        api: the `HfApi` to use (tests pass a double).
        card_kwargs: forwarded to `model_card_for_checkpoint` (results, training_args, base_model, ...).

    Returns:
        The `CommitInfo` of the upload.
    """
    api = api if api is not None else HfApi(token=token)
    with tempfile.TemporaryDirectory() as staging_dir:
        stage_for_hub(checkpoint_dir, staging_dir, repo_id, **card_kwargs)
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id, repo_type="model", folder_path=staging_dir, commit_message=commit_message
        )


def add_push_parser(subparsers) -> argparse.ArgumentParser:
    """Register `push-to-hub DIR REPO_ID` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "push-to-hub",
        help="upload a checkpoint (safetensors, configs, remote code, generated model card) to the Hub",
        description="Publish a save_pretrained folder with a generated model card.",
    )
    parser.add_argument("checkpoint_dir", help="folder written by save_pretrained")
    parser.add_argument("repo_id", help="Hub repository, e.g. user/depth-anything-v2-small-finetuned")
    parser.add_argument("--results", help="results.json of `depth-anything eval` (default: DIR/results.json)")
    parser.add_argument("--training_args", help="training arguments JSON (default: DIR/training_args.json)")
    parser.add_argument("--base_model", help="what the weights were trained from (decides the licence)")
    parser.add_argument("--license", help="explicit licence (CC-BY-NC-4.0 lineages cannot be relicensed)")
    parser.add_argument("--datasets", nargs="+", help="training datasets for the card metadata")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--token", help="Hub token (default: the logged-in one)")
    parser.add_argument("--commit_message", default="Upload Depth Anything checkpoint")
    parser.add_argument(
        "--local_dir", help="write the files that would be uploaded to this folder instead of uploading"
    )
    parser.set_defaults(func=run_push)
    return parser


def run_push(args: argparse.Namespace):
    """Run `push-to-hub` from parsed arguments; prints what was written or uploaded."""
    card_kwargs = dict(
        results=args.results, training_args=args.training_args, base_model=args.base_model,
        license=args.license, datasets=args.datasets,
    )
    if args.local_dir:
        names = stage_for_hub(args.checkpoint_dir, args.local_dir, args.repo_id, **card_kwargs)
        print(f"Wrote {len(names)} files to {args.local_dir}: {', '.join(names)}")
        return names
    commit = push_to_hub(
        args.checkpoint_dir, args.repo_id, private=args.private, token=args.token,
        commit_message=args.commit_message, **card_kwargs,
    )
    print(f"Uploaded {args.checkpoint_dir} to {commit.commit_url}")
    return commit
