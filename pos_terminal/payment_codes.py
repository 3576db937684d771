"""Customer payment codes: which provider a scanned string belongs to (rules from config), or why
it is refused. Pure rules (standard library only): the machine checks every scan with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pos_terminal.config_fields import bounds
from pos_terminal.errors import ConfigError

NOT_A_PAYMENT_CODE = "不是付款码 Not a payment code"


@dataclass(frozen=True)
class ProviderRuleConfig:
    """One provider's payment codes: all digits, a length range and leading-digit prefixes."""

    name: str = field(metadata=bounds(min_len=1))  # routing key, e.g. "wechat"
    label_zh: str = field(metadata=bounds(min_len=1))
    label_en: str = field(metadata=bounds(min_len=1))
    min_digits: int = field(metadata=bounds(min=8, max=64))
    max_digits: int = field(metadata=bounds(min=8, max=64))
    # "10-15" (a numeric range of equally long prefixes) or "62"
    prefixes: tuple[str, ...] = field(metadata=bounds(min_len=1))
    enabled: bool = False


# Reference: wechatpay-v3.md §5 and peripherals.md §6 (verify against the providers' docs).
WECHAT = ProviderRuleConfig("wechat", "微信支付", "WeChat Pay", 18, 18, ("10-15",), enabled=True)
ALIPAY = ProviderRuleConfig("alipay", "支付宝", "Alipay", 16, 24, ("25-30",))
UNIONPAY = ProviderRuleConfig("unionpay", "云闪付", "UnionPay QR", 19, 19, ("62",))


@dataclass(frozen=True)
class CodeRulesConfig:
    """`payment.codes` in the config: the providers a scan is checked against, in order."""

    providers: tuple[ProviderRuleConfig, ...] = (WECHAT, ALIPAY, UNIONPAY)
    repeat_window_s: float = field(default=3.0, metadata=bounds(min=0.0, max=600.0))


@dataclass(frozen=True)
class CodeVerdict:
    provider: str | None  # the provider to charge; None when refused
    refusal: str  # shown to the cashier when provider is None


@dataclass(frozen=True)
class _Rule:
    name: str
    min_digits: int
    max_digits: int
    prefixes: tuple[tuple[int, int, int], ...]  # (length, low, high)
    enabled: bool
    refusal: str  # when matched but not enabled

    def matches(self, code: str) -> bool:
        if not self.min_digits <= len(code) <= self.max_digits:
            return False
        return any(lo <= int(code[:n]) <= hi for n, lo, hi in self.prefixes)


@dataclass(frozen=True)
class CodeRules:
    """Validated rules; pure, so the state machine may hold and apply them."""

    rules: tuple[_Rule, ...]

    @classmethod
    def from_config(cls, config: CodeRulesConfig) -> CodeRules:
        """Raises ConfigError (key `payment.codes...`) on a bad prefix or length range."""
        built = []
        names: set[str] = set()
        for i, p in enumerate(config.providers):
            key = f"payment.codes.providers[{i}]"
            if p.name in names:
                raise ConfigError(f"provider {p.name!r} is listed twice", key=f"{key}.name")
            names.add(p.name)
            if p.min_digits > p.max_digits:
                raise ConfigError("min_digits is larger than max_digits", key=f"{key}.min_digits")
            prefixes = tuple(
                _parse_prefix(text, f"{key}.prefixes[{j}]", p.min_digits)
                for j, text in enumerate(p.prefixes)
            )
            refusal = f"未开通{p.label_zh} {p.label_en} is not enabled on this terminal"
            built.append(_Rule(p.name, p.min_digits, p.max_digits, prefixes, p.enabled, refusal))
        return cls(tuple(built))

    def classify(self, code: str) -> CodeVerdict:
        """Route a scanned string to its provider, or say why it is refused."""
        text = code.strip()
        if not (text.isascii() and text.isdigit()):
            return CodeVerdict(None, NOT_A_PAYMENT_CODE)
        for rule in self.rules:
            if rule.matches(text):
                return (
                    CodeVerdict(rule.name, "") if rule.enabled else CodeVerdict(None, rule.refusal)
                )
        return CodeVerdict(None, NOT_A_PAYMENT_CODE)

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules if r.enabled)


def _parse_prefix(text: str, key: str, min_digits: int) -> tuple[int, int, int]:
    low, sep, high = text.partition("-")
    high = high if sep else low
    ok = low.isdigit() and high.isdigit() and len(low) == len(high) and int(low) <= int(high)
    if not ok or len(low) > min_digits:
        raise ConfigError(f"{text!r} is not a prefix like '62' or a range like '10-15'", key=key)
    return len(low), int(low), int(high)


DEFAULT_RULES = CodeRules.from_config(CodeRulesConfig())


def mask_code(code: str) -> str:
    """Payment codes are bearer tokens: keep the first 4 and last 4 digits only."""
    if len(code) <= 8:
        return "*" * len(code)
    return code[:4] + "*" * (len(code) - 8) + code[-4:]
