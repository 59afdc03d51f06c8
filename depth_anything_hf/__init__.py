"""Depth Anything for the Hugging Face stack."""
