"""`--mixed_precision` values (accelerate's names) and the autocast dtype each one stands for.

One table for every place that autocasts: the training scripts, the data engine's teacher, evaluation and the
benchmarks.
"""

import torch

# "no": full precision, autocast off.
MIXED_PRECISION_DTYPES = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MIXED_PRECISION_CHOICES = tuple(MIXED_PRECISION_DTYPES)


def autocast_dtype(mixed_precision: str) -> torch.dtype | None:
    """The autocast dtype of `mixed_precision` ("no", "bf16" or "fp16"); None for "no" (autocast off)."""
    if mixed_precision not in MIXED_PRECISION_DTYPES:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION_CHOICES}, got {mixed_precision!r}")
    return MIXED_PRECISION_DTYPES[mixed_precision]
