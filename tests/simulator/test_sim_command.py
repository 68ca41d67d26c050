"""The ``simulate`` command: options and help, config round trip, foreground run, subprocess."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from importer.errors import ConfigError
from importer.simulator import Simulator, SimulatorConfig, SimulatorProcess
from importer.simulator.command import (
    build_parser,
    config_from_args,
    config_to_args,
    main,
    register,
    run_simulate,
)
from importer.simulator.media import fixture_objects

from .helpers import PLAYED, auth, event, post


def post_event(url: str, token: str) -> httpx.Response:
    """The helper event, once its media object exists (strict media objects refuse it before)."""
    if not httpx.get(url + "/__sim/media", params={"externalId": "video-1"}).json()["objects"]:
        httpx.post(url + "/__sim/media", json={"objects": fixture_objects()}).raise_for_status()
    return httpx.post(url + PLAYED, json=event(), headers=auth(token))


def test_every_option_has_help() -> None:
    parser = build_parser()
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 28
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS and len(action.help) > 15, action.dest
    text = parser.format_help()
    for flag in ("--burst", "--window-ms", "--daily", "--token", "--drop-rate", "--storm-every-s", "--record"):
        assert flag in text


def test_register_adds_simulate() -> None:
    parser = argparse.ArgumentParser(prog="media-import")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", "--burst", "5", "--token", "t:media_bridge.write"])
    assert args.func is run_simulate
    config = config_from_args(args)
    assert config.burst == 5 and config.tokens == {"t": frozenset({"media_bridge.write"})}


def test_options_build_the_config(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("email,id\nAnn@Example.com,11\n")
    args = build_parser().parse_args(
        [
            "--port", "0", "--daily", "50", "--token", "a", "--token", "b:", "--token", "c:x,y",
            "--contacts-file", str(contacts), "--contact", "bob@example.com=12", "--seed", "4",
            "--error-rate", "0.1", "--retry-after-429", "--client-id", "i", "--client-secret", "s",
            "--refresh-token", "r", "--storm-every-s", "5", "--storm-duration-s", "1",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.tokens == {"a": None, "b": frozenset(), "c": frozenset({"x", "y"})}
    assert config.contacts == {"ann@example.com": 11, "bob@example.com": 12}
    assert (config.daily, config.seed, config.error_rate, config.retry_after_on_429) == (50, 4, 0.1, True)
    assert config.oauth_enabled and config.storm_every_s == 5.0


def test_config_round_trips_through_the_command_line() -> None:
    config = SimulatorConfig(
        burst=7,
        window_ms=900,
        daily=30,
        tokens={"x": None, "y": frozenset({"media_bridge.write"})},
        contacts={"a@b.c": 3},
        latency_ms=5,
        jitter_ms=2,
        seed=9,
        drop_rate=0.1,
        slow_rate=0.1,
        slow_ms=50,
        fault_retry_after_s=2,
        retry_after_on_429=True,
        client_id="i",
        client_secret="s",
        refresh_token="r",
        token_ttl_s=60,
    )
    assert config_from_args(build_parser().parse_args(config_to_args(config))) == config


def test_bad_options_list_every_problem() -> None:
    args = build_parser().parse_args(["--error-rate", "2", "--burst", "-1", "--client-id", "x"])
    with pytest.raises(ConfigError) as caught:
        config_from_args(args)
    message = str(caught.value)
    assert "error_rate" in message and "burst" in message and "OAuth" in message


def test_port_in_use_is_a_clean_error(simulator: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", str(simulator.port)]) == 2
    err = capsys.readouterr().err
    assert "cannot listen" in err and "hint:" in err and "Traceback" not in err


def test_foreground_run_prints_url_and_token_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "importer.simulator.command", "--port", "0", "--token", "local-t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert url, first
        assert "local-t" in proc.stdout.readline()
        response = post_event(url.group(1), "local-t")
        assert response.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "simulator stopped" in out and "Traceback" not in err


def test_subprocess_simulator(tmp_path: Path) -> None:
    record = tmp_path / "events.jsonl"
    with SimulatorProcess(SimulatorConfig(burst=2, window_ms=60_000, record_path=str(record))) as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        codes = [post_event(sim.url, sim.token).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert httpx.get(sim.url + "/__sim/stats").json()["accepted_events"] == 2
    assert len(record.read_text().splitlines()) == 2
    assert sim.stop() == 0  # already stopped by the with block: a clean exit code


def test_a_thread_simulator_stops_and_starts_again_fresh() -> None:
    sim = Simulator()
    with sim:
        first = sim.url
        sim.client.seed_media(fixture_objects())
        assert post(sim).status_code == 200
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(first + "/__sim/stats")
    with sim:
        sim.client.seed_media(fixture_objects())
        assert post(sim).status_code == 200
        assert len(sim.client.events()) == 1
