"""Cache keys for datasets built with `from_generator` (streaming=False) from local files."""

import os
from pathlib import Path

from datasets.fingerprint import Hasher


def files_fingerprint(records: list[dict], *extra, code_files=()) -> str:
    """A `from_generator` fingerprint that changes when a listed file or the decoding code changes.

    `datasets` would otherwise reuse a cached dataset built from files that have since been
    replaced, since it only hashes the record list. Files are the values of record keys ending
    in "path"; `code_files` are the source files whose code turns them into rows.
    """
    file_states = [
        (os.stat(value).st_size, os.stat(value).st_mtime_ns) if os.path.exists(value) else None
        for record in records
        for key, value in record.items()
        if key.endswith("path")
    ]
    code = [Path(code_file).read_bytes() for code_file in code_files]
    return Hasher.hash([records, file_states, extra, code])
