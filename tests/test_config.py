"""Configuration: the shipped files load; every mistake names the file, the line and the key."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from pos_terminal.config import load_config, parse_config
from pos_terminal.config_reference import reference
from pos_terminal.errors import ConfigError
from pos_terminal.payments.numbers import TERMINAL_ID_MAX, new_number
from tests.helpers import MINIMAL_CONFIG as MINIMAL

ROOT = Path(__file__).parents[1]


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml")
    return caught.value


def test_the_laptop_default_loads() -> None:
    config = load_config(ROOT / "config" / "terminal.yaml")
    assert config.wechat.sandbox.enabled
    assert config.devices.printer.columns == 32
    assert config.merchant.name.startswith("好邻居")


def test_defaults_fill_what_is_left_out() -> None:
    config = parse_config(MINIMAL)
    assert config.payment.code_deadline_s == 45.0
    assert config.payment.reverse_min_delay_s == 15.0


def test_an_unknown_key_is_named_with_its_line_and_a_suggestion() -> None:
    text = MINIMAL + "devices:\n  printer:\n    colums: 32\n"
    err = error_of(text)
    assert err.line == 10
    assert err.key == "devices.printer.colums"
    assert "did you mean 'columns'" in str(err)
    assert str(err).startswith("t.yaml:10: devices.printer.colums: unknown key")


def test_a_wrong_type_is_named() -> None:
    err = error_of(MINIMAL.replace("enabled: true", "enabled: maybe"))
    assert (err.line, err.key) == (7, "wechat.sandbox.enabled")
    assert "true or false" in str(err)


def test_a_number_out_of_range_is_named_with_the_range() -> None:
    err = error_of(MINIMAL + "payment:\n  code_deadline_s: 0.5\n")
    assert (err.line, err.key) == (9, "payment.code_deadline_s")
    assert "between 1.0 and 600.0" in str(err)


def test_a_missing_required_key_is_named() -> None:
    err = error_of(MINIMAL.replace("  store_id: S1\n", ""))
    assert err.key == "merchant.store_id"
    assert "required key missing" in str(err)


def test_a_choice_outside_the_list_is_named() -> None:
    err = error_of(MINIMAL + "devices:\n  printer:\n    encoding: big5\n")
    assert err.key == "devices.printer.encoding" and "'gb18030'" in str(err)


def test_production_mode_needs_merchant_credentials() -> None:
    err = error_of(MINIMAL.replace("enabled: true", "enabled: false"))
    assert err.key == "wechat.merchant_file"


def test_broken_yaml_gives_the_line() -> None:
    err = error_of("merchant:\n  name: [unclosed\n")
    assert err.line is not None and "not valid YAML" in str(err)


def test_a_duplicate_key_is_refused() -> None:
    err = error_of(MINIMAL + "journal:\n  path: a\n  path: b\n")
    assert err.key == "journal.path" and "twice" in str(err)


def test_numbers_stay_text_where_text_is_expected() -> None:
    config = parse_config(MINIMAL.replace("store_id: S1", "store_id: 0012"))
    assert config.merchant.store_id == "0012"


def test_the_command_line_reports_a_config_error_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "jornal:\n  path: x\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pos_terminal.cli", "run", "--headless", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"config error: {bad}:8: jornal: unknown key (did you mean 'journal'?); valid keys: "
        "devices, journal, merchant, notify, payment, screen, staff, wechat"
    ]


def test_the_notification_receiver_is_off_unless_it_is_given_an_address() -> None:
    assert parse_config(MINIMAL).notify.address is None
    config = parse_config(MINIMAL + "notify:\n  listen: 127.0.0.1:8080\n")
    assert config.notify.address == ("127.0.0.1", 8080)
    assert config.wechat.notify_path == "/wechatpay/notify"
    assert parse_config(MINIMAL + "notify:\n  listen: '[::1]:0'\n").notify.address == (
        "::1",
        0,
    )


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("notify:\n  listen: '8080'\n", "notify.listen", "host:port"),
        ("notify:\n  listen: 0.0.0.0:70000\n", "notify.listen", "out of range"),
        ("notify:\n  request_timeout_s: 0.1\n", "notify.request_timeout_s", "out of range"),
        ("notify:\n  max_connections: 0\n", "notify.max_connections", "out of range"),
        ("  notify_url: https://pos.example.com/notify?shop=1\n", "wechat.notify_url", "query"),
        ("  notify_url: pos.example.com/notify\n", "wechat.notify_url", "http(s)"),
    ],
)
def test_a_bad_receiver_setting_is_named(text: str, key: str, words: str) -> None:
    err = error_of(MINIMAL + text)
    assert err.key == key and words in str(err)


def test_a_hid_scanner_needs_its_device() -> None:
    err = error_of(MINIMAL + "devices:\n  scanner:\n    type: hid\n")
    assert err.key == "devices.scanner.device" and "required key missing" in str(err)


def test_real_scanners_and_keypads_are_configured_by_type() -> None:
    text = MINIMAL + (
        "devices:\n"
        "  keypad:\n    type: hid\n    device: /dev/input/by-id/kbd\n"
        "  scanner:\n    type: serial\n    port: /dev/ttyACM0\n    suffix: CRLF\n"
    )
    devices = parse_config(text).devices.sections
    assert (devices["keypad"].type, devices["keypad"].settings.device) == (
        "hid",
        "/dev/input/by-id/kbd",
    )
    assert (devices["scanner"].type, devices["scanner"].settings.suffix) == ("serial", "CRLF")


def test_a_bad_code_prefix_names_file_and_key() -> None:
    text = MINIMAL + (
        "payment:\n  codes:\n    providers:\n"
        "      - {name: wechat, label_zh: 微信, label_en: WeChat, min_digits: 18,"
        " max_digits: 18, prefixes: ['15-10'], enabled: true}\n"
    )
    err = error_of(text)
    assert err.file == "t.yaml" and err.key == "payment.codes.providers[0].prefixes[0]"


def test_providers_other_than_wechat_cannot_be_enabled_yet() -> None:
    text = MINIMAL + (
        "payment:\n  codes:\n    providers:\n"
        "      - {name: alipay, label_zh: 支付宝, label_en: Alipay, min_digits: 16,"
        " max_digits: 24, prefixes: ['25-30'], enabled: true}\n"
    )
    err = error_of(text)
    assert err.key == "payment.codes.providers" and "alipay cannot be enabled" in str(err)


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    assert load_config(path).merchant.terminal_id


def test_a_section_emptied_of_its_last_key_names_the_key_now_missing() -> None:
    err = error_of(MINIMAL.replace("  name: 测试商户\n  store_id: S1\n  terminal_id: T1\n", ""))
    assert (err.line, err.key) == (1, "merchant.name")
    assert "required key missing" in str(err)
    emptied = parse_config(MINIMAL + "staff:\n  # supervisor_pin_sha256: removed\n")
    assert emptied.staff.supervisor_pin_sha256 == ""  # nothing required there: the defaults


def test_a_list_emptied_of_its_last_entry_is_an_empty_list() -> None:
    production = MINIMAL.replace("enabled: true", "enabled: false")
    err = error_of(production + "  merchant_file: m.json\n  hosts:\n")
    assert err.key == "wechat.hosts" and "at least one host" in str(err)


def test_a_misspelt_time_zone_is_refused_with_its_line_and_the_closest_name() -> None:
    text = MINIMAL.replace("  terminal_id: T1\n", "  terminal_id: T1\n  timezone: Asia/Shanghia\n")
    err = error_of(text)
    assert (err.line, err.key) == (5, "merchant.timezone")
    assert "'Asia/Shanghai'" in str(err)
    zoned = parse_config(text.replace("Shanghia", "Tokyo"))
    assert zoned.merchant.timezone == "Asia/Tokyo"


@pytest.mark.parametrize("terminal_id", ["T" * (TERMINAL_ID_MAX + 1), "T 1", "前台1"])
def test_a_terminal_id_order_numbers_cannot_hold_whole_is_refused(terminal_id: str) -> None:
    err = error_of(MINIMAL.replace("terminal_id: T1", f"terminal_id: {terminal_id}"))
    assert (err.line, err.key) == (4, "merchant.terminal_id")


def test_the_longest_terminal_id_goes_whole_into_order_and_refund_numbers() -> None:
    longest = "T-9_" + "x" * (TERMINAL_ID_MAX - 4)
    config = parse_config(MINIMAL.replace("terminal_id: T1", f"terminal_id: {longest}"))
    now = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    for prefix in ("", "R"):
        number = new_number(prefix, config.merchant.terminal_id, now)
        assert number.startswith(prefix + longest) and len(number) <= 32  # out_trade_no: 32


WITH_DESCRIPTION = MINIMAL.replace("wechat:\n", "wechat:\n  description: {}\n")


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (MINIMAL.replace("S1", "S" * 33), 3, "merchant.store_id"),  # store_info.out_id: 32
        (WITH_DESCRIPTION.format("d" * 128), 6, "wechat.description"),  # 127 at most
        (WITH_DESCRIPTION.format("面条🍜"), 6, "wechat.description"),  # nothing beyond U+FFFF
    ],
)
def test_text_wechat_would_refuse_at_every_sale_is_refused_at_start(
    text: str, line: int, key: str
) -> None:
    err = error_of(text)
    assert (err.line, err.key) == (line, key)


def test_the_configuration_reference_in_docs_is_current() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert docs == reference(), (
        "docs/configuration.md is stale: pos-terminal config --reference > docs/configuration.md"
    )


@pytest.mark.parametrize("shipped", ["terminal.yaml", "raspberry-pi.yaml"])
def test_the_reference_names_every_key_of_the_shipped_configs(shipped: str) -> None:
    tree = yaml.safe_load((ROOT / "config" / shipped).read_text(encoding="utf-8"))
    text = reference()

    def keys(node: dict[str, object], heading: str) -> list[tuple[str, str]]:
        found = []
        for key, value in node.items():
            if isinstance(value, dict):  # a device section's keys are its backend's
                here = f"`{heading.strip('`')}.{key}`" if heading else f"`{key}`"
                backend = f"{here} with `type: {value['type']}`" if "type" in value else here
                found += [(here, "type")] if "type" in value else []
                found += keys({k: v for k, v in value.items() if k != "type"}, backend)
            else:
                found.append((heading, key))
        return found

    for heading, key in keys(tree, ""):
        table = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
        assert f"| `{key}` |" in table, f"{heading}: {key}"


def test_the_config_command_checks_a_file_in_one_line(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MINIMAL, encoding="utf-8")
    bad.write_text(MINIMAL.replace("T1", "T 1"), encoding="utf-8")
    runs = [
        subprocess.run(
            [sys.executable, "-m", "pos_terminal.cli", "config", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for path in (good, bad)
    ]
    assert (runs[0].returncode, runs[0].stdout) == (0, f"{good}: ok\n")
    assert runs[1].returncode == 2
    assert runs[1].stderr.startswith(f"config error: {bad}:4: merchant.terminal_id: ")


def test_a_merchant_file_given_while_the_sandbox_is_on_is_refused_with_its_line() -> None:
    err = error_of(MINIMAL.replace("wechat:\n", "wechat:\n  merchant_file: /etc/m.json\n"))
    assert (err.line, err.key) == (6, "wechat.merchant_file")
    assert "wechat.sandbox.enabled: false" in str(err)  # else the sandbox takes every payment


def test_a_receiver_behind_the_example_notify_url_is_refused_as_it_would_never_hear_anything() -> (
    None
):
    real = MINIMAL.replace("  sandbox:\n    enabled: true\n", "  merchant_file: m.json\n")
    real += "notify:\n  listen: 127.0.0.1:8080\n"
    err = error_of(real)
    assert err.key == "wechat.notify_url" and "pos.example.com" in str(err)
    named = real.replace("wechat:\n", "wechat:\n  notify_url: https://pay.shop.cn/wechatpay\n")
    assert parse_config(named).notify.listen == "127.0.0.1:8080"
