"""Regenerate the example model cards of the official Depth Anything releases in this folder.

    python model_cards/generate_example_cards.py

One card per release in `depth_anything_hf.hub.OFFICIAL_RELEASES`, rendered from
`depth_anything_hf/hub/model_card_template.md` for a repository `EXAMPLE_NAMESPACE/<Release-Title>`.
The evaluation tables hold the numbers reported in the papers, labelled as such; nothing in them
was measured here. tests/test_model_cards.py checks that the files match this script's output.
"""

from pathlib import Path

from depth_anything_hf.hub import OFFICIAL_RELEASES, official_model_card

EXAMPLE_NAMESPACE = "depth-anything-hf"
CARDS_DIR = Path(__file__).resolve().parent


def example_cards() -> dict[str, str]:
    """{file name: card text} for every official release."""
    return {
        f"{key}.md": str(official_model_card(key, f"{EXAMPLE_NAMESPACE}/{release.title.replace(' ', '-')}"))
        for key, release in OFFICIAL_RELEASES.items()
    }


def main() -> None:
    for file_name, text in example_cards().items():
        (CARDS_DIR / file_name).write_text(text, encoding="utf-8")
        print(f"wrote {CARDS_DIR / file_name}")


if __name__ == "__main__":
    main()
