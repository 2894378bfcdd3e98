"""Cost estimates from token counts: list prices in USD per million tokens (input, output).

Estimates only (providers change prices; check your invoice). A model not listed costs
`None` (unknown), a local server or the offline writer costs nothing.
"""

from __future__ import annotations

from decimal import Decimal

PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "claude-sonnet-4-5": (Decimal("3.00"), Decimal("15.00")),
    "claude-haiku-4-5": (Decimal("1.00"), Decimal("5.00")),
    "claude-opus-4-1": (Decimal("15.00"), Decimal("75.00")),
}
MILLION = Decimal(1_000_000)


def estimate_cost(
    provider: str, model: str, input_tokens: int, output_tokens: int, *, local: bool = False
) -> Decimal | None:
    if provider == "offline" or local:
        return Decimal(0)
    # Dated snapshots ("gpt-4o-mini-2024-07-18") are priced as their family.
    for name in sorted(PRICES, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            price_in, price_out = PRICES[name]
            cost = (price_in * input_tokens + price_out * output_tokens) / MILLION
            return cost.quantize(Decimal("0.000001"))
    return None
