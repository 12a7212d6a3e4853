"""The words command-line options accept, declared once for the parser and for the code that acts on them.

This module imports nothing, so `harness --help` can list every choice without loading what a run needs.
"""

from __future__ import annotations

__all__ = ["FUZZ_PARTS", "KINDS"]

# How an endpoint's URL and credentials are built: any base URL, or one of Google's documented surfaces.
KINDS = ("openai", "vertex", "vertex-endpoint", "gemini-api")

# The parts a fuzz run may leave out: content part types, request features, and sampling parameters.
FUZZ_PARTS = frozenset(
    {
        "image_url",
        "input_audio",
        "tools",
        "response_format",
        "stream",
        "google",
        "system",
        "multi_turn",
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    }
)
