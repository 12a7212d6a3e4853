"""The request parameters the support matrix has a row for, and which check codes tell each one's effect.

Every top-level member of OpenAI's `CreateChatCompletionRequest` (but `model` and `messages`, which every request
carries) and every extension Google documents for its OpenAI-compatible surfaces, named as they are written in a
request, dotted for nested ones. A parameter's effect is seen through registered checks: a finding of one of its
`absent` codes means the effect did not come (the endpoint ignored it), a finding of one of its `wrong` codes
means it came malformed. Pure data: it imports nothing from the harness, so profiles and reports can both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOCUMENTED", "PARAMETERS", "Documented", "Parameter", "parameter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    """One row of the support matrix. `effect` is what shows it honoured ("" when nothing observable is defined)."""

    name: str
    origin: str
    effect: str = ""
    absent: tuple[str, ...] = ()
    wrong: tuple[str, ...] = ()
    note: str = ""
    deprecated: bool = False
    repeat: bool = False
    """Its effect shows on the second of two requests (a case with `repeat: true`); the first only accepts it."""

    @property
    def observable(self) -> bool:
        return bool(self.absent or self.wrong)


_TWO_REQUESTS = "a cache's lifetime shows over minutes, not in an answer: a 200 is `accepted`"
_REASONING = ("params.reasoning_reported",)
_MOVES = ("params.reasoning_reported", "params.reasoning_moves")  # the second: two requests (repeat: {with: ...})
_THOUGHTS = ("google.extra_body_honoured",)
# A limit's probe asks for far more than the limit, so it also expects `length` (an answer that ends on its own
# exactly at the limit says `stop`, so that is no check of its own); and a stream carries no usage unless asked.
_LIMIT = ("params.token_limit", "expect.finish_reason")
_ARGUMENTS = ("tools.name_declared", "tools.arguments_json", "tools.arguments_valid")

PARAMETERS: tuple[Parameter, ...] = (
    Parameter(name="audio", origin="openai", effect="an audio part with data and a transcript",
              absent=("params.audio_returned",), note="needs an audio-output model (tag `costly`)"),
    Parameter(name="frequency_penalty", origin="openai"),
    Parameter(name="function_call", origin="openai", deprecated=True),
    Parameter(name="functions", origin="openai", deprecated=True),
    Parameter(name="logit_bias", origin="openai", note="token ids are the model's own, so no effect is checked"),
    Parameter(name="logprobs", origin="openai", effect="per-token logprobs <= 0, whose tokens join to the content",
              absent=("params.logprobs_returned",), wrong=("params.logprobs_valid",)),
    Parameter(name="max_completion_tokens", origin="openai",
              effect="completion_tokens within the limit, and `length` when it is reached",
              absent=_LIMIT),
    Parameter(name="max_tokens", origin="openai", deprecated=True,
              effect="completion_tokens within the limit, and `length` when it is reached",
              absent=_LIMIT),
    Parameter(name="metadata", origin="openai"),
    Parameter(name="modalities", origin="openai", effect="an audio part with data and a transcript",
              absent=("params.audio_returned",), note="needs an audio-output model (tag `costly`)"),
    Parameter(name="moderation", origin="openai"),
    Parameter(name="n", origin="openai", effect="n choices, not all the same when sampled at temperature >= 1",
              absent=("response.choice_count", "params.n_choices_differ")),
    Parameter(name="parallel_tool_calls", origin="openai", effect="`false`: at most one tool call",
              absent=("params.single_tool_call",)),
    Parameter(name="prediction", origin="openai", effect="prediction token counts in usage",
              absent=("params.prediction_counted",)),
    Parameter(name="presence_penalty", origin="openai"),
    Parameter(name="prompt_cache_key", origin="openai", effect="cached prompt tokens when the request is repeated",
              absent=("params.prompt_cache_hit",), repeat=True,
              note="the cached tokens may come from the server's own cache, whatever the key"),
    Parameter(name="prompt_cache_options", origin="openai", note=_TWO_REQUESTS),
    Parameter(name="prompt_cache_retention", origin="openai", deprecated=True, note=_TWO_REQUESTS),
    Parameter(name="reasoning_effort", origin="openai", effect="reasoning tokens in usage", absent=_REASONING),
    Parameter(name="response_format", origin="openai", effect="JSON content, valid against the schema asked for",
              absent=("structured.content_json", "structured.schema_valid")),
    Parameter(name="safety_identifier", origin="openai"),
    Parameter(name="seed", origin="openai", deprecated=True, effect="the same answer when the request is repeated",
              absent=("params.seed_repeatable",), repeat=True),
    Parameter(name="service_tier", origin="openai", effect="the tier echoed in the answer",
              absent=("params.service_tier_echoed",)),
    Parameter(name="stop", origin="openai", effect="the stop string absent, the content cut before it",
              absent=("params.stop_absent",)),
    Parameter(name="store", origin="openai"),
    Parameter(name="stream", origin="openai", effect="server-sent events ending with [DONE]",
              absent=("stream.content_type",), wrong=("stream.framing", "stream.data_json", "stream.done_marker")),
    Parameter(name="stream_options", origin="openai", effect="`include_usage`: usage in the stream",
              absent=("stream.usage_present",)),
    Parameter(name="temperature", origin="openai"),
    Parameter(name="tool_choice", origin="openai", effect="the call it forces or forbids",
              absent=("tools.choice_honoured",)),
    Parameter(name="tools", origin="openai", effect="a forced call, naming a declared function with valid arguments",
              absent=("tools.choice_honoured",), wrong=_ARGUMENTS),
    Parameter(name="top_logprobs", origin="openai", effect="k alternatives for each token",
              absent=("params.top_logprobs_returned",), wrong=("params.top_logprobs_count",)),
    Parameter(name="top_p", origin="openai"),
    Parameter(name="user", origin="openai", deprecated=True),
    Parameter(name="verbosity", origin="openai"),
    Parameter(name="web_search_options", origin="openai", effect="url citations in the answer's annotations",
              absent=("params.url_citations",), note="needs a search-capable model (tag `costly`)"),
    Parameter(name="extra_body.google.cached_content", origin="google",
              note="names a cache made beforehand with caches.create, so no case can carry one"),
    Parameter(name="extra_body.google.media_resolution", origin="google"),
    Parameter(name="extra_body.google.safety_settings", origin="google"),
    Parameter(name="extra_body.google.thinking_config.include_thoughts", origin="google",
              effect="thoughts in the content, in the marker's tags", absent=_THOUGHTS, wrong=("google.thought_tags",)),
    Parameter(name="extra_body.google.thinking_config.thinking_budget", origin="google",
              effect="reasoning tokens in usage, more for a larger budget", absent=_MOVES),
    Parameter(name="extra_body.google.thinking_config.thinking_level", origin="google",
              effect="reasoning tokens in usage, more at a higher level", absent=_MOVES),
    Parameter(name="extra_body.google.thought_tag_marker", origin="google",
              effect="thoughts wrapped in the marker's tags", absent=_THOUGHTS, wrong=("google.thought_tags",)),
)  # fmt: skip

_BY_NAME = {p.name: p for p in PARAMETERS}


def parameter(name: str) -> Parameter:
    """The catalogue's row for `name`, or a row with no effect for a parameter it does not know (a user's own)."""
    return _BY_NAME.get(name) or Parameter(name=name, origin="")


DOCUMENTED = ("supported", "ignored", "refused")


@dataclass(frozen=True, slots=True, kw_only=True)
class Documented:
    """What a provider's documentation says of one parameter (`supported`, `ignored` or `refused`), and where."""

    status: str
    url: str = ""
    note: str = ""
