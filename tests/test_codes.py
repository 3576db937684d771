"""Payment-code routing rules built from config."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pos_terminal.errors import ConfigError
from pos_terminal.payment_codes import (
    ALIPAY,
    DEFAULT_RULES,
    UNIONPAY,
    WECHAT,
    CodeRules,
    CodeRulesConfig,
    CodeVerdict,
)

ALL_ON = CodeRules.from_config(
    CodeRulesConfig(tuple(replace(p, enabled=True) for p in (WECHAT, ALIPAY, UNIONPAY)))
)


@pytest.mark.parametrize(
    "code, provider",
    [
        ("101234567890123456", "wechat"),
        ("151234567890123456", "wechat"),
        ("2512345678901234", "alipay"),  # 16 digits
        ("301234567890123456789012", "alipay"),  # 24 digits
        ("281234567890123456", "alipay"),  # 18 digits, prefix 28
        ("6212345678901234567", "unionpay"),
        (" 134567890123456789\r\n", "wechat"),
    ],
)
def test_codes_are_routed_to_their_provider(code: str, provider: str) -> None:
    assert ALL_ON.classify(code) == CodeVerdict(provider, "")


@pytest.mark.parametrize(
    "code",
    [
        "",
        "16123456789012345",  # prefix 16: nobody's
        "09123456789012345678",
        "13456789012345678",  # 17 digits
        "1345678901234567890",  # 19 digits, wechat prefix
        "251234567890123",  # 15 digits
        "2512345678901234567890123",  # 25 digits
        "621234567890123456",  # 18 digits with UnionPay's prefix
        "13456789012345678X",
        "１３４５６７８９０１２３４５６７８９",  # full-width digits
        "https://example.com/13",
    ],
)
def test_strings_outside_every_rule_are_not_payment_codes(code: str) -> None:
    assert ALL_ON.classify(code) == CodeVerdict(None, "不是付款码 Not a payment code")


def test_the_default_rules_charge_wechat_only_and_name_what_is_disabled() -> None:
    assert DEFAULT_RULES.classify("134567890123456789") == CodeVerdict("wechat", "")
    alipay = DEFAULT_RULES.classify("281234567890123456")
    assert alipay.provider is None and "Alipay is not enabled on this terminal" in alipay.refusal
    unionpay = DEFAULT_RULES.classify("6212345678901234567")
    assert unionpay.provider is None and "UnionPay QR is not enabled" in unionpay.refusal


def test_rules_come_from_config_not_code() -> None:
    custom = replace(WECHAT, name="wechat-test", prefixes=("19",), min_digits=20, max_digits=20)
    rules = CodeRules.from_config(CodeRulesConfig((custom,)))
    assert rules.classify("19" + "0" * 18).provider == "wechat-test"
    assert rules.classify("134567890123456789").provider is None
    assert rules.enabled == ("wechat-test",)


@pytest.mark.parametrize(
    "bad, key",
    [
        (replace(WECHAT, prefixes=("1-15",)), "prefixes[0]"),
        (replace(WECHAT, prefixes=("15-10",)), "prefixes[0]"),
        (replace(WECHAT, prefixes=("1x",)), "prefixes[0]"),
        (replace(WECHAT, min_digits=20), "min_digits"),
    ],
)
def test_a_bad_rule_is_a_config_error_naming_the_key(bad: object, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        CodeRules.from_config(CodeRulesConfig((bad,)))  # type: ignore[arg-type]
    assert err.value.key.endswith(key)


def test_a_provider_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        CodeRules.from_config(CodeRulesConfig((WECHAT, WECHAT)))


def test_code_rules_read_from_yaml_with_the_config_schema() -> None:
    import yaml

    from pos_terminal.config_schema import NodeReader

    text = """
providers:
  - {name: wechat, label_zh: 微信支付, label_en: WeChat Pay, min_digits: 18, max_digits: 18,
     prefixes: ["10-15"], enabled: true}
repeat_window_s: 5
"""
    config = NodeReader("t.yaml").read(CodeRulesConfig, yaml.compose(text), "payment.codes")
    assert CodeRules.from_config(config).classify("101234567890123456").provider == "wechat"
