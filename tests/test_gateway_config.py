"""The gateway's config: validated at start, each error naming the file, line and field,
provider keys only from the environment; and `synapsekit serve`'s refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synapsekit import cli
from synapsekit.errors import ConfigError
from synapsekit.gateway.config import hash_key, key_id, load_config, parse_config
from synapsekit.gateway.core import build_routers

ROOT = Path(__file__).resolve().parent.parent
ENV = {"OPENAI_API_KEY": "sk-up-1", "ANTHROPIC_API_KEY": "sk-ant-up-2"}

GOOD = """\
[gateway]
port = 4100
master_key_env = "GW_MASTER"

[[models]]
name = "fast"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"

[[models]]
name = "fast"
model = "claude-haiku-4-5"
api_key_env = "ANTHROPIC_API_KEY"
max_tokens = 512

[[models]]
name = "embed"
model = "text-embedding-3-small"
kind = "embedding"
api_key_env = "OPENAI_API_KEY"

[router]
cooldown = 10

[router.fast]
strategy = "round_robin"

[[keys]]
key = "sk-gw-alpha-0001"
budget_usd = 2.5
window = "day"
models = ["fast"]

[[keys]]
key_hash = "sha256:%s"
name = "beta"

[storage]
ledger = "sqlite:///tmp/spend.db"
""" % ("ab" * 32)


def test_a_good_config() -> None:
    config = parse_config(GOOD, "gw.toml", ENV)
    assert [(m.name, m.model) for m in config.groups["fast"]] == [
        ("fast", "gpt-4o-mini"), ("fast", "claude-haiku-4-5")]
    assert list(config.groups) == ["fast"]
    assert list(config.embedding_models) == ["embed"]
    assert config.options_for("fast").strategy == "round_robin"
    assert config.options_for("fast").cooldown == 10.0  # the global [router] underneath
    alpha, beta = config.keys
    assert alpha.key_hash == hash_key("sk-gw-alpha-0001")
    assert alpha.info.id == key_id(alpha.key_hash) and alpha.info.id.startswith("key_")
    assert (alpha.info.budget_usd, alpha.info.window, alpha.info.models) == (
        2.5, "day", ("fast",))
    assert (beta.info.name, beta.info.models) == ("beta", None)
    assert (config.port, config.host, config.master_key_env) == (4100, "127.0.0.1", "GW_MASTER")
    assert "sk-gw-alpha" not in repr(config)  # the secret is not kept, only its hash


def test_groups_become_routers_with_keys_from_the_environment() -> None:
    routers = build_routers(parse_config(GOOD, "gw.toml", ENV), ENV)
    fast = routers["fast"]
    assert fast.strategy == "round_robin"
    assert [f"{m.provider}:{m.model}" for m in fast.members] == [
        "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
    assert [m.config.api_key for m in fast.members] == ["sk-up-1", "sk-ant-up-2"]
    assert [m.config.system_prompt for m in fast.members] == [None, None]
    assert fast.members[1].config.max_tokens == 512
    assert "sk-up-1" not in repr(fast) and "sk-up-1" not in repr(fast.members[0].config)


def _error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "gateway.toml", ENV if env is None else env)
    return str(info.value)


MODEL = '[[models]]\nname = "fast"\nmodel = "gpt-4o-mini"\n'


@pytest.mark.parametrize(("text", "message"), [
    (MODEL + '\n[[models]]\nname = "fast"\nbase_url = "http://x"\n',
     "gateway.toml:5: models[1].model: is required"),
    (MODEL + 'api_key_env = "NOT_SET_ANYWHERE"\n',
     "gateway.toml:4: models[0].api_key_env: the environment variable NOT_SET_ANYWHERE is "
     "not set"),
    (MODEL + 'api_key = "sk-live-123"\n',
     "gateway.toml:4: models[0].api_key: provider keys are not read from the file: put the "
     "key in an environment variable and name it with api_key_env"),
    (MODEL + 'temprature = 0.3\n',
     "gateway.toml:4: models[0].temprature: unknown field; expected one of api_key_env, "
     "api_version, base_url, kind, max_retries, max_tokens, model, name, params, provider, "
     "retry_delay, temperature, timeout, weight"),
    (MODEL + 'max_tokens = 0\n', "gateway.toml:4: models[0].max_tokens: must be an integer >= 1, "
     "not 0"),
    (MODEL + '\n[router.fast]\nstrategy = "random"\n',
     "gateway.toml:6: router.fast.strategy: must be one of fallback, round_robin, weighted, "
     "least_latency, least_busy, cheapest, not 'random'"),
    (MODEL + '\n[router.slow]\ncooldown = 1\n',
     "gateway.toml:5: router.slow: no [[models]] entry is named 'slow'"),
    (MODEL + '\n[[keys]]\nkey = "sk-gw-0001"\nmodels = ["fast", "smart"]\n',
     "gateway.toml:7: keys[0].models: no [[models]] entry is named 'smart'"),
    (MODEL + '\n[[keys]]\nkey = "sk-gw-0001"\nwindow = "week"\n',
     "gateway.toml:7: keys[0].window: must be 'day' or 'month' (or left out), not 'week'"),
    (MODEL + '\n[[keys]]\nname = "no secret"\n',
     "gateway.toml:5: keys[0]: give exactly one of key or key_hash"),
    (MODEL + '\n[[keys]]\nkey_hash = "md5:abc"\n',
     "gateway.toml:6: keys[0].key_hash: must be 'sha256:' and 64 lowercase hex digits"),
    (MODEL + '\n[storage]\nledger = "mysql://x"\n',
     "gateway.toml:6: storage.ledger: must start with sqlite:/// or postgresql://"),
    (MODEL + '\n[gateway]\nport = "4000"\n',
     "gateway.toml:6: gateway.port: must be an integer >= 0, not '4000'"),
    (MODEL + '\n[limits]\nrpm = 1\n',
     "gateway.toml:5: limits: unknown table; expected one of gateway, keys, models, router, "
     "storage"),
    ('[gateway]\nport = 1\n', "gateway.toml: models: give at least one [[models]] table"),
])
def test_errors_name_line_and_field(text: str, message: str) -> None:
    assert _error(text) == message


def test_not_toml_says_where() -> None:
    message = _error('[[models]]\nname = "fast\n')
    assert message.startswith("gateway.toml: not valid TOML: ")
    assert "line 2" in message


def test_the_example_config_loads() -> None:
    config = load_config(ROOT / "examples" / "gateway.toml",
                         {"OPENAI_API_KEY": "sk-test-key"})
    assert list(config.groups) == ["fast"] and len(config.groups["fast"]) == 2
    assert config.host == "127.0.0.1" and config.keys[0].info.models == ("fast",)


def test_serve_refuses_workers_without_redis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(MODEL + 'api_key_env = "GW_TEST_KEY"\n')
    monkeypatch.setenv("GW_TEST_KEY", "sk-up-3")
    assert cli.main(["serve", "--config", str(path), "--workers", "4"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: --workers 4 needs [storage] redis_url in {path}: without Redis each worker "
        "keeps its own rate limits, budget holds and circuit breakers, so every key would "
        "get 4 times its limits. Set redis_url or use one worker.\n"
    )


def test_serve_reports_a_config_error_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(MODEL + 'api_key_env = "GW_UNSET_VARIABLE"\n')
    os.environ.pop("GW_UNSET_VARIABLE", None)
    assert cli.main(["serve", "--config", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}:4: models[0].api_key_env: the environment variable GW_UNSET_VARIABLE "
        "is not set\n"
    )


def test_a_member_that_cannot_be_made_names_its_line() -> None:
    text = (MODEL + 'api_key_env = "OPENAI_API_KEY"\n\n[[models]]\nname = "fast"\n'
            'model = "x-1"\nprovider = "nowhere"\n')
    with pytest.raises(ConfigError) as info:
        build_routers(parse_config(text, "gateway.toml", ENV), ENV)
    assert str(info.value).startswith(  # (then the providers: plugins may add some)
        "gateway.toml:6: models[1]: provider: unknown provider 'nowhere'; valid providers are: "
        "anthropic, azure, bedrock, ")


def test_a_member_without_a_key_is_a_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        build_routers(parse_config(MODEL, "gateway.toml", {}), {})
    assert str(info.value) == (
        "gateway.toml:1: models[0]: No API key for the 'openai' provider: pass api_key=... "
        "or set the environment variable OPENAI_API_KEY.")
