"""The figures a reader compares across cases and endpoints: status, latency, time to first token, tokens."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Result

__all__ = ["Figures", "case_cell", "figures"]


@dataclass(frozen=True, slots=True)
class Figures:
    status: int | None = None
    total_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def cells(self) -> tuple[str, str, str, str]:
        """status, ms, ttft ms, tokens (prompt/completion) as short text; '-' where unknown."""

        def show(value: float | int | None) -> str:
            return "-" if value is None else f"{value:.0f}"

        tokens = "-" if self.completion_tokens is None else f"{show(self.prompt_tokens)}/{self.completion_tokens}"
        return show(self.status), show(self.total_ms), show(self.ttft_ms), tokens


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def figures(result: Result) -> Figures:
    exchange = result.exchange
    if exchange is None:
        return Figures()
    answer = exchange.answer()
    usage = answer.get("usage") if isinstance(answer, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return Figures(
        status=exchange.response.status if exchange.response else None,
        total_ms=exchange.timings.total_ms,
        ttft_ms=exchange.timings.ttft_ms,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def case_cell(result: Result) -> str:
    """A both-ways case has two rows in a table; `[stream]` tells the streamed one from the plain one, and `2/3`
    one repetition of a repeated case from the others."""
    cell = f"{result.case_id} [{result.mode}]" if result.mode else result.case_id
    return cell + (f" {result.repetition}/{result.repetitions}" if result.repetitions > 1 else "")
