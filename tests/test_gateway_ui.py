"""``GET /ui`` in a real headless Chromium (Debian's /usr/bin/chromium, driven by Python
playwright; never a downloaded browser).

Two levels: the page renderer alone, on a fixed snapshot (routes answered by playwright
from the package: no server), and the live gateway after known requests from the real
openai SDK, its numbers checked against the ledger's rows exactly. Each test saves a
screenshot and prints its path. CI=true: a missing Chromium or playwright fails the test.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from synapsekit.gateway.core import MemoryLedger
from synapsekit.gateway.dashboard import COOKIE
from synapsekit.gateway.dashboard_page import Group, Latency, Snapshot, money, render_page
from synapsekit.llm.router_state import MemberHealth
from synapsekit.testing.simulators.openai_protocol import OpenAISimulator, error
from tests.gateway_fixtures import GatewayServer, gateway_config, member
from tests.redis_server import in_ci

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UP_KEY = "sk-upstream-ui-1"
MASTER = "sk-gw-master-ui-9"
ALPHA = "sk-gw-alpha-ui-1"
BETA = "sk-gw-beta-ui-2"
BLUE = (0x1F, 0x77, 0xB4)  # the first series' colour in static/dashboard.js
DAY = 86400.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if in_ci():
            pytest.fail(f"CI=true and playwright is not installed: {exc}")
        pytest.skip(f"playwright is not installed: {exc}")
    if not shutil.which(CHROMIUM):
        if in_ci():
            pytest.fail(f"CI=true and {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield found
        found.close()


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    where = Path(os.environ.get("SYNAPSEKIT_ARTIFACTS", tmp_path)) / name
    page.screenshot(path=str(where), full_page=True)
    print(f"screenshot: {where}")


def _blue_pixels(page: Any, chart: str) -> int:
    """Pixels of the first series' colour in ``chart``'s canvas (0: nothing drawn)."""
    count: int = page.evaluate(
        """([id, rgb]) => {
            const c = document.querySelector('#' + id + ' canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (Math.abs(d[i] - rgb[0]) < 8 && Math.abs(d[i + 1] - rgb[1]) < 8
                    && Math.abs(d[i + 2] - rgb[2]) < 8 && d[i + 3] > 200) n++;
            }
            return n;
        }""",
        [chart, list(BLUE)],
    )
    return count


def _static(route: Any) -> None:
    name = route.request.url.rsplit("/", 1)[-1]
    body = (resources.files("synapsekit.gateway") / "static" / name).read_bytes()
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    route.fulfill(status=200, body=body, content_type=kind)


def test_page_of_a_fixed_snapshot(browser: Any, tmp_path: Path) -> None:
    since = 1_764_633_600.0 - 2 * DAY  # three UTC days
    snap = Snapshot(
        generated_at=since + 2 * DAY + 3600, since=since,
        totals=Group("all", 7, 1, 700, 140, 0.0125),
        keys=(Group("key_alpha", 5, 1, 500, 100, 0.01), Group("key_<b>", 2, 0, 200, 40, 0.0025)),
        models=(Group("fast", 7, 1, 700, 140, 0.0125),),
        latency=Latency(12.5, 40.0, 41.0), ttft=Latency(3.0, 9.5, 9.5),
        errors=(("ServerError", 502, 1),),
        days=(since, since + DAY, since + 2 * DAY),
        spend_by_key={"key_alpha": (0.004, 0.0, 0.006), "key_<b>": (0.0, 0.0025, 0.0)},
        spend_by_model={"fast": (0.004, 0.0025, 0.006)},
        members=(("fast", MemberHealth("openai:gpt-4o-mini", "open", 4.25, 0, 3, 3, 4)),),
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("http://ui.test/ui", lambda route: route.fulfill(
        status=200, body=render_page(snap), content_type="text/html"))
    page.route("http://ui.test/ui/static/*", _static)
    page.goto("http://ui.test/ui")
    page.wait_for_selector("body[data-charts=drawn]")
    assert errors == []
    assert page.inner_text("#total-requests") == "7"
    assert page.inner_text("#total-errors") == "1"
    assert page.inner_text("#total-spend") == "$0.012500"
    assert page.inner_text("#by-key tr[data-name='key_<b>'] .spend") == "$0.002500"
    assert page.inner_text("#latency-p99") == "41.0 ms"
    assert page.inner_text("#ttft-p95") == "9.5 ms"
    assert page.inner_text("#errors .error") == "ServerError"
    assert page.inner_text("#members .state") == "open"
    assert page.locator("#chart-key .u-legend").inner_text().count("key_") == 2
    assert _blue_pixels(page, "chart-key") > 50
    assert _blue_pixels(page, "chart-model") > 50
    _shot(page, tmp_path, "ui-fixed.png")
    page.close()


# --------------------------------------------------------------------------- live


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenAISimulator]:
    with OpenAISimulator(UP_KEY) as found:
        yield found


@pytest.fixture(scope="module")
def gw(sim: OpenAISimulator) -> Iterator[GatewayServer]:
    text = gateway_config(
        [member("fast", "gpt-4o-mini", sim.url), member("big", "gpt-4o", sim.url)],
        [{"key": ALPHA, "name": "alpha"}, {"key": BETA, "name": "beta"}],
        extra='[gateway]\nmaster_key_env = "GW_MASTER"\n',
    )
    env = {"SIM_KEY": UP_KEY, "GW_MASTER": MASTER}
    with GatewayServer(text, env=env, ledger=MemoryLedger()) as server:
        yield server


@pytest.fixture(scope="module")
def traffic(gw: GatewayServer, sim: OpenAISimulator) -> list[Any]:
    """3 streamed requests from alpha on "fast", 2 plain ones from beta on "big", and one
    of beta's failing upstream (500): six ledger rows."""
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=ALPHA, max_retries=0) as alpha:
        for _ in range(3):
            stream = alpha.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}], stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream
                           if c.choices) == "Hello, world!"
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=BETA, max_retries=0) as beta:
        for _ in range(2):
            beta.chat.completions.create(model="big", messages=[{"role": "user", "content": "x"}])
        sim.enqueue(error(500))
        with pytest.raises(openai.APIStatusError):
            beta.chat.completions.create(model="big", messages=[{"role": "user", "content": "x"}])
    ledger = gw.gateway.ledger
    assert isinstance(ledger, MemoryLedger)
    assert len(ledger.rows) == 6 and len(sim.requests) == 6
    return list(ledger.rows)


def test_unauthenticated_gets_401_and_no_data(gw: GatewayServer, traffic: list[Any],
                                               browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    answer = page.goto(gw.url + "/ui")
    assert answer is not None and answer.status == 401
    html = page.content()
    assert "total-requests" not in html and "key_" not in html and "dashboard-data" not in html
    assert page.locator("form[action='/ui/login'] input[type=password]").count() == 1
    page.fill("#key", ALPHA)  # a real key, but not the master key
    page.click("button[type=submit]")
    assert "not the master key" in page.inner_text("#login-error")
    assert "total-requests" not in page.content()
    _shot(page, tmp_path, "ui-refused.png")
    page.close()


def test_dashboard_numbers_are_the_ledger_s(gw: GatewayServer, traffic: list[Any],
                                            browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(gw.url + "/ui")
    page.fill("#key", MASTER)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-charts=drawn]")
    assert page.url == gw.url + "/ui"  # the key is never in the URL
    cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert MASTER not in cookie["value"]  # a signed session, never the key itself
    expiry, _, signature = cookie["value"].partition(".")
    assert expiry.isdigit() and len(signature) == 64

    rows = traffic
    assert page.inner_text("#total-requests") == "6"
    assert page.inner_text("#total-errors") == "1"
    total = sum(r.cost_usd for r in rows)
    assert total > 0
    assert page.get_attribute("#total-spend", "data-value") == repr(total)
    assert page.inner_text("#total-spend") == money(total)
    tokens = f"{sum(r.input_tokens for r in rows)} / {sum(r.output_tokens for r in rows)}"
    assert page.inner_text("#total-tokens") == tokens
    for key_id in {r.key_id for r in rows}:
        mine = [r for r in rows if r.key_id == key_id]
        line = page.locator(f"#by-key tbody tr[data-name='{key_id}']")
        assert line.locator(".requests").inner_text() == str(len(mine))
        assert line.locator(".spend").get_attribute("data-value") == repr(
            sum(r.cost_usd for r in mine))
    big = page.locator("#by-model tbody tr[data-name='big']")
    assert big.locator(".requests").inner_text() == "3"
    assert big.locator(".errors").inner_text() == "1"
    failed = next(r for r in rows if r.error is not None)
    assert page.inner_text("#errors .error") == failed.error
    assert page.inner_text("#errors .status") == str(failed.status)
    assert page.locator("#members tbody tr").count() == 2
    assert page.inner_text("#members tr[data-member='fast/openai:gpt-4o-mini'] .state") == (
        "closed")
    assert _blue_pixels(page, "chart-key") > 20
    assert _blue_pixels(page, "chart-model") > 20
    _shot(page, tmp_path, "ui-live.png")
    page.goto(gw.url + "/ui/logout")
    assert not [c for c in context.cookies() if c["name"] == COOKIE]
    context.close()


def test_bearer_header_static_files_and_headers(gw: GatewayServer, traffic: list[Any],
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="synapsekit.gateway.access")
    with httpx.Client(base_url=gw.url) as http:
        ok = http.get("/ui", headers={"authorization": f"Bearer {MASTER}"})
        assert ok.status_code == 200 and 'id="total-requests" class="value">6<' in ok.text
        assert "script-src 'self'" in ok.headers["content-security-policy"]
        assert ok.headers["cache-control"] == "no-store"
        assert MASTER not in ok.text and UP_KEY not in ok.text
        refused = http.get("/ui", headers={"authorization": f"Bearer {BETA}"})
        assert refused.status_code == 403 and "total-requests" not in refused.text
        assert http.get("/ui", headers={"authorization": "Bearer nope"}).status_code == 401
        forged = http.get("/ui", cookies={COOKIE: "9999999999." + "0" * 64})
        assert forged.status_code == 401 and "total-requests" not in forged.text
        as_key = http.get("/ui", cookies={COOKIE: MASTER})  # the key itself is no session
        assert as_key.status_code == 401 and "total-requests" not in as_key.text
        lib = http.get("/ui/static/uPlot.iife.min.js")
        assert lib.status_code == 200 and lib.text.startswith("/*! https://github.com/leeoniya")
        assert http.get("/ui/static/uPlot.LICENSE").status_code == 404
        assert http.get("/ui/static/..%2Fdashboard.py").status_code == 404
    logged = [r.getMessage() for r in caplog.records if " GET /ui " in r.getMessage()]
    assert len(logged) == 5 and " GET /ui 200 " in logged[0]
    assert logged[0].split()[1] != "-"  # the master key's id, as the key store names it
    assert not [line for line in logged if MASTER in line or BETA in line]


def test_dashboard_over_the_sqlite_ledger(sim: OpenAISimulator, tmp_path: Path) -> None:
    """The same page over the real ledger (SQLite, its writer thread and its query): what
    /ui says is what the database holds."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from synapsekit.gateway.config import parse_config
    from synapsekit.gateway.ledger import SqlLedger
    from synapsekit.gateway.parts import ConfigKeys

    sim.reset()
    text = gateway_config([member("fast", "gpt-4o-mini", sim.url)], [{"key": ALPHA}],
                          ledger=tmp_path / "spend.db",
                          extra='[gateway]\nmaster_key_env = "GW_MASTER"\n')
    env = {"SIM_KEY": UP_KEY, "GW_MASTER": MASTER}
    keys = ConfigKeys(parse_config(text, "gateway.toml", env), env)
    with GatewayServer(text, env=env, keys=keys) as gw:
        ledger = gw.gateway.ledger
        assert isinstance(ledger, SqlLedger)
        with openai.OpenAI(base_url=gw.url + "/v1", api_key=ALPHA, max_retries=0) as alpha:
            for _ in range(4):
                alpha.chat.completions.create(
                    model="fast", messages=[{"role": "user", "content": "hi"}])
        ledger.flush()
        with ThreadPoolExecutor(1) as pool:  # playwright's sync API holds this thread's loop
            rows = pool.submit(asyncio.run, ledger.rows()).result()
        assert len(rows) == 4 and len(sim.requests) == 4
        page = httpx.get(gw.url + "/ui", headers={"authorization": f"Bearer {MASTER}"}).text
    total = sum(r.cost_usd for r in rows)
    assert 'id="total-requests" class="value">4<' in page
    assert f'id="total-spend" class="value" data-value="{total!r}">{money(total)}<' in page
    assert f'<tr data-name="{rows[0].key_id}"><td class="name">' in page
