"""Consortium and node files: generated, loaded, validated; the cluster CLI without processes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from medbench.cli import main
from medbench.runtime import cluster
from medbench.runtime.config import ConfigError, load_consortium, load_node


@pytest.fixture(scope="module")
def lay(tmp_path_factory: pytest.TempPathFactory) -> cluster.Layout:
    return cluster.generate(tmp_path_factory.mktemp("c") / "c", 4, client_groups=2,
                            clients_per_group=8)  # fmt: skip


def test_generated_files_load(lay: cluster.Layout) -> None:
    cons = load_consortium(lay.consortium)
    assert (cons.n, cons.f, cons.service, cons.transport, cons.durability) == (
        4, 1, "null", "tls", "FULL",
    )  # fmt: skip
    assert cons.protocol.max_batch_delay_us == 1
    assert [g.ids for g in cons.clients] == [range(8, 16), range(16, 24)]
    node = load_node(lay.node_file(2))
    assert node.id == 2 and node.consortium.n == 4
    assert node.tls_key.exists() and node.validator_key.exists()
    assert node.password()
    assert (lay.node_dir(2) / "key.pass").stat().st_mode & 0o777 == 0o600
    assert "BEGIN CERTIFICATE" in cons.members[2].certificate


def _edit(lay: cluster.Layout, tmp: Path, fn: object) -> Path:
    doc = tomllib.loads(lay.consortium.read_text())
    fn(doc)  # type: ignore[operator]
    out = tmp / "edited.toml"
    out.write_text(tomli_w.dumps(doc, multiline_strings=True))
    return out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["consortium"].update(service="pow"), "service"),
        (lambda d: d["consortium"].update(transport="udp"), "transport"),
        (lambda d: d["members"][1].update(id=5), "id order"),
        (lambda d: d["members"][0].update(validator_key="zz"), "hex"),
        (lambda d: d["members"][0].update(address="nowhere"), "host:port"),
        (lambda d: d["protocol"].update(bogus=1), "unknown keys"),
        (lambda d: d["protocol"].update(max_batch_size=0), "protocol"),
        (lambda d: d["clients"][1].update(first_id=9), "overlap"),
        (lambda d: d["transport_limits"].update(x=1), "transport_limits"),
    ],
)
def test_bad_consortium_files(
    lay: cluster.Layout, tmp_path: Path, edit: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_consortium(_edit(lay, tmp_path, edit))


def test_bad_node_files(lay: cluster.Layout, tmp_path: Path) -> None:
    doc = tomllib.loads(lay.node_file(0).read_text())
    doc["consortium"] = str(lay.consortium)
    doc["id"] = 9
    bad = tmp_path / "node.toml"
    bad.write_text(tomli_w.dumps(doc))
    with pytest.raises(ConfigError, match="not a member"):
        load_node(bad)
    doc["id"] = 0
    doc["link_faults"] = {"loss": 2.0}
    bad.write_text(tomli_w.dumps(doc))
    with pytest.raises(ConfigError, match="link_faults"):
        load_node(bad)
    with pytest.raises(ConfigError):
        load_node(tmp_path / "missing.toml")


def test_cli_init_status_down_without_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "c"
    assert main(["cluster", "init", "--nodes", "4", "--dir", str(d), "--transport", "plain"]) == 0
    assert load_consortium(d / "consortium.toml").transport == "plain"
    assert main(["cluster", "status", "--dir", str(d)]) == 1  # nothing runs
    out = capsys.readouterr().out
    assert "last_executed" in out and "False" in out
    assert main(["cluster", "down", "--dir", str(d)]) == 0
    with pytest.raises(FileExistsError):
        cluster.generate(d, 4)


def test_node_run_refuses_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "n.toml").write_text("id = 'x'")
    assert main(["node", "run", str(tmp_path / "n.toml")]) == 2
