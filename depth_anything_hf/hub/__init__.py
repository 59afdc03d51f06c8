"""The Hub side of a checkpoint, in three parts:

- `releases`: the facts of the official releases (papers' numbers, training data, citations) and the licence rules;
- `cards`: model cards rendered from those facts, or from a checkpoint's config, `results.json` and training
  arguments;
- `upload`: what a checkpoint folder publishes (weights, configs, the code that travels with the weights, the card),
  staged locally or uploaded (the `depth-anything push-to-hub` command is defined in `depth_anything_hf.cli`).
"""

from .cards import CardContent, model_card_for_checkpoint, official_model_card, render_model_card
from .releases import (
    APACHE_2,
    CC_BY_NC_4,
    OFFICIAL_RELEASES,
    OfficialRelease,
    lineage_license,
    variant_license,
)
from .upload import files_to_upload, push_to_hub, stage_for_hub

__all__ = [
    "APACHE_2",
    "CC_BY_NC_4",
    "OFFICIAL_RELEASES",
    "CardContent",
    "OfficialRelease",
    "files_to_upload",
    "lineage_license",
    "model_card_for_checkpoint",
    "official_model_card",
    "push_to_hub",
    "render_model_card",
    "stage_for_hub",
    "variant_license",
]
