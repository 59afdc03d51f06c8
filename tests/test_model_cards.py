"""The example cards shipped in model_cards/: up to date, licensed per variant, paper numbers labelled as reported."""

import importlib.util
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
EXPECTED_LICENSES = {
    "v1-small": "apache-2.0", "v1-base": "apache-2.0", "v1-large": "apache-2.0",
    "v2-small": "apache-2.0", "v2-base": "cc-by-nc-4.0", "v2-large": "cc-by-nc-4.0", "v2-giant": "cc-by-nc-4.0",
    "v2-metric-indoor-small": "apache-2.0", "v2-metric-outdoor-small": "apache-2.0",
    "v2-metric-indoor-base": "cc-by-nc-4.0", "v2-metric-outdoor-base": "cc-by-nc-4.0",
    "v2-metric-indoor-large": "cc-by-nc-4.0", "v2-metric-outdoor-large": "cc-by-nc-4.0",
}
# docs/method.md section 6, zero-shot AbsRel / delta1 of the ViT-S models.
PAPER_VIT_S = {
    "v1-small": {"kitti": (0.080, 0.936), "nyu": (0.053, 0.972), "sintel": (0.464, 0.739), "ddad": (0.247, 0.768),
                 "eth3d": (0.127, 0.885), "diode": (0.076, 0.939)},
    "v2-small": {"kitti": (0.078, 0.936), "nyu": (0.053, 0.973), "sintel": (0.500, 0.718), "eth3d": (0.142, 0.851),
                 "diode": (0.073, 0.942)},
}


def _generator():
    spec = importlib.util.spec_from_file_location("generate_example_cards", MODEL_CARDS / "generate_example_cards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_cards_are_exactly_what_the_generator_writes():
    generated = _generator().example_cards()
    assert sorted(generated) == sorted(f"{key}.md" for key in EXPECTED_LICENSES)
    for file_name, text in generated.items():
        assert (MODEL_CARDS / file_name).read_text(encoding="utf-8") == text, f"{file_name} is stale: regenerate it"


@pytest.mark.parametrize("key", sorted(EXPECTED_LICENSES))
def test_card_metadata_and_licence(key):
    card = ModelCard.load(MODEL_CARDS / f"{key}.md")
    data = card.data
    assert data.license == EXPECTED_LICENSES[key]
    assert (data.library_name, data.pipeline_tag) == ("transformers", "depth-estimation")
    assert data.datasets and data.tags
    if data.license == "cc-by-nc-4.0":
        assert "non-commercial use only" in card.text
    for result in data.eval_results or []:
        assert result.source_name.startswith("Reported in the paper")
        assert result.metric_config == "disparity"
    if data.eval_results:
        assert "**Reported in the paper, not measured here**" in card.text
    else:
        assert "none were measured here" in card.text


@pytest.mark.parametrize("key", sorted(PAPER_VIT_S))
def test_reported_numbers_are_the_papers(key):
    card = ModelCard.load(MODEL_CARDS / f"{key}.md")
    reported = {(result.dataset_type, result.metric_type): result.metric_value for result in card.data.eval_results}
    expected = {}
    for dataset, (abs_rel, delta1) in PAPER_VIT_S[key].items():
        expected[dataset, "abs_rel"] = abs_rel
        expected[dataset, "delta1"] = delta1
    assert reported == expected
