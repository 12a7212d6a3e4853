"""How pytest-xdist hands case items to its workers: both runs of a both-ways case go to the same worker.

The streamed run of a both-ways case is judged against the plain answer of the same case (the two must agree),
so the plain and the streamed item are sent together, by one process. xdist's default `--dist load` deals out
single items, which would split such a pair between two workers, each then sending the plain request and each
writing its recording. This scheduler is xdist's own scope scheduler with a scope of one item, except that
`...::id[endpoint][stream]` shares the scope of `...::id[endpoint]`.

Imported only from the plugin's `pytest_xdist_make_scheduler` hook, that is only when xdist runs the session;
this module imports xdist, which chat-conformance does not depend on.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from xdist.scheduler import LoadScopeScheduling

__all__ = ["CaseScheduling"]

STREAM = "[stream]"


class CaseScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type information
    """xdist's `load` distribution, keeping the two runs of a both-ways case together."""

    def __init__(self, config: Any, log: Any, patterns: Sequence[str]) -> None:
        super().__init__(config, log)
        self.patterns = tuple(patterns)

    def _split_scope(self, nodeid: str) -> str:
        path, _, name = nodeid.partition("::")
        file = PurePosixPath(path).name
        if name.endswith("]" + STREAM) and any(fnmatch.fnmatchcase(file, p) for p in self.patterns):
            return nodeid.removesuffix(STREAM)
        return nodeid
