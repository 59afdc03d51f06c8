"""Loading a dataset the user named: a local path, or else a `datasets` / Hub name."""

import os

import datasets


def load_named_dataset(name: str, **load_kwargs):
    """`datasets.load_dataset(name, **load_kwargs)`, saying first that no local path `name` exists when it fails.

    A mistyped relative path ("ds/nope") is also a valid Hub id, so `datasets` looks it up on the Hub and reports
    only that it cannot reach or find it there.
    """
    try:
        return datasets.load_dataset(name, **load_kwargs)
    except (FileNotFoundError, ConnectionError) as error:
        if os.path.exists(name):
            raise
        raise FileNotFoundError(
            f"{name!r} does not exist as a local path (relative to {os.getcwd()!r}), and as a `datasets` or Hub "
            f"name it could not be loaded: {type(error).__name__}: {error}"
        ) from error
