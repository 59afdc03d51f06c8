"""The facts of the official releases: which checkpoints exist, what the papers report for them, the data they
were trained on, their citations, and the licence rules (docs/method.md section 6).

Licence rule: the official V1 weights (all sizes) and V2-Small are Apache-2.0, V2 Base/Large/Giant are
CC-BY-NC-4.0, and a checkpoint fine-tuned from weights inherits their licence. The lineage is read from
`base_model` (an official Hub id, a DINOv2 id, or a local checkpoint folder with its own card); without one the
variant's official licence is assumed, which is the conservative reading for converted and fine-tuned weights.
Weights trained here from DINOv2 (Apache-2.0) say so with `base_model="facebook/dinov2-<size>"`.

The reported numbers are the papers', never measurements of this project; cards label them so.
"""

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import ModelCard
from huggingface_hub.constants import REPOCARD_NAME

from ..configuration_depth_anything_hf import SIZE_OF_HIDDEN_SIZE

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
DINOV2_IDS = {size: f"facebook/dinov2-{size}" for size in SIZE_OF_HIDDEN_SIZE.values()}

V1_LABELED = ("BlendedMVS", "DIML", "HRWSI", "IRS", "MegaDepth", "TartanAir")
V2_SYNTHETIC = ("BlendedMVS", "Hypersim", "IRS", "TartanAir", "Virtual KITTI 2")
UNLABELED = (
    "SA-1B", "Open Images V7", "BDD100K", "Google Landmarks v2", "ImageNet-21K", "LSUN", "Objects365", "Places365"
)


def variant_license(version: str, size: str) -> str:
    """Licence of the official weights of a variant: V1 and V2-Small Apache-2.0, else CC-BY-NC-4.0."""
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
    card_path = Path(base_model) / REPOCARD_NAME
    if card_path.is_file():
        license_of_base = ModelCard.load(card_path).data.license
        if license_of_base:
            return license_of_base
    raise ValueError(
        f"Cannot tell the licence of base_model {base_model!r}: it is neither an official Depth Anything or "
        "DINOv2 Hub id nor a local folder whose README.md declares a licence; pass license= explicitly"
    )


def checked_license(lineage: str, requested: str | None) -> str:
    """`requested` (None: `lineage`), refused where the lineage is CC-BY-NC-4.0 and it differs."""
    if requested is None or requested == lineage:
        return lineage
    if lineage == CC_BY_NC_4:
        raise ValueError(
            f"The weights derive from CC-BY-NC-4.0 weights (V2 Base/Large/Giant) and must keep that licence, "
            f"not {requested!r}"
        )
    return requested
