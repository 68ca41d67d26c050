"""Lookup joins: enrich rows from a CSV / Parquet file by a normalised key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import Cli

from importer.errors import ConfigError, InputError
from importer.mapping.spec import load_mapping, parse_mapping
from importer.run.pipeline import Pipeline

from .helpers import T0, column, csv_file, mapping_doc, run, write_mapping, write_rows


def contacts_doc(path: str | None = "contacts.csv", **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"key": "email", **extra}
    if path is not None:
        table["path"] = path
    return mapping_doc(
        {"contactId": {"lookup": "contacts", "match": "email", "get": "contact_id"}},
        lookups={"contacts": table},
    )


def write_contacts(path: Path) -> Path:
    return csv_file(
        path,
        "email,contact_id,name",
        " Alice@Example.com ,101,Alice",
        "bob@example.com,102,Bob",
        "ALICE@example.com,999,Alice again",  # same key after normalisation: the first row wins
    )


def plays(path: Path) -> Path:
    return csv_file(
        path,
        "sid,email,utk,ts",
        f"a,alice@example.com,,{T0}",
        f"b,  BOB@EXAMPLE.COM,,{T0}",
        f"c,carol@example.com,,{T0}",
        f"d,dave@example.com,utk-d,{T0}",
        f"e,,utk-e,{T0}",
    )


def test_csv_lookup_with_key_normalisation(tmp_path: Path) -> None:
    write_contacts(tmp_path / "contacts.csv")
    data = plays(tmp_path / "plays.csv")
    doc = contacts_doc()
    doc["fields"]["contactUtk"] = "utk"
    out = run(doc, [data], tmp_path)
    assert [(p["sessionId"], p.get("contactId"), p.get("contactUtk")) for p in out.payloads] == [
        ("a", 101, None),
        ("b", 102, None),
        ("d", None, "utk-d"),  # a miss is fine when another contact id is there
        ("e", None, "utk-e"),
    ]
    assert [(r["row_number"], r["field"], r["value"], r["error"]) for r in out.invalid] == [
        (
            3,
            "contactId",
            "carol@example.com",
            "contactId: not found in lookup 'contacts'",  # once: "no contact" follows from it
        )
    ]
    assert dict(out.report.invalid) == {"contactId: not found in lookup 'contacts'": 1}


def test_normalise_trim_only_is_case_sensitive(tmp_path: Path) -> None:
    write_contacts(tmp_path / "contacts.csv")
    data = csv_file(tmp_path / "plays.csv", "sid,email,ts", f"a,Alice@Example.com  ,{T0}", f"b,alice@example.com,{T0}")
    out = run(contacts_doc(normalize=["trim"]), [data], tmp_path)
    assert [(p["sessionId"], p["contactId"]) for p in out.payloads] == [("a", 101)]
    assert [(r["row_number"], r["value"]) for r in out.invalid] == [(2, "alice@example.com")]


def test_parquet_lookup_by_numeric_key(tmp_path: Path) -> None:
    write_rows(
        tmp_path / "viewers.parquet", [{"viewer_id": 7, "utk": "utk-seven"}, {"viewer_id": 8, "utk": "utk-eight"}]
    )
    data = csv_file(tmp_path / "plays.csv", "sid,viewer,ts", f"a,7,{T0}", f"b, 8 ,{T0}")
    doc = mapping_doc(
        {"contactId": None, "contactUtk": {"lookup": "viewers", "match": "viewer", "get": "utk"}},
        lookups={"viewers": {"path": "viewers.parquet", "key": "viewer_id"}},
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "contactUtk") == ["utk-seven", "utk-eight"]


def test_lookup_path_is_relative_to_the_mapping_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_contacts(tmp_path / "customer" / "lookups" / "contacts.csv")
    mapping_path = write_mapping(tmp_path / "customer" / "mappings" / "m.yaml", contacts_doc("../lookups/contacts.csv"))
    data = plays(tmp_path / "plays.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    mapping = load_mapping(mapping_path)
    assert mapping.lookups["contacts"].path == str(tmp_path / "customer" / "lookups" / "contacts.csv")
    prepared = list(Pipeline(mapping, [str(data)]).batches())
    payloads = [json.loads(p) for b in prepared for p in b.events.column("payload").to_pylist()]
    assert [p["contactId"] for p in payloads] == [101, 102]


def test_lookup_option_overrides_the_mapping_path(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    write_contacts(tmp_path / "contacts.csv")
    csv_file(tmp_path / "other" / "acme.csv", "email,contact_id", "alice@example.com,555", "bob@example.com,556")
    mapping = write_mapping(tmp_path / "m.yaml", contacts_doc("contacts.csv"))
    data = csv_file(tmp_path / "plays.csv", "sid,email,ts", f"a,alice@example.com,{T0}", f"b,bob@example.com,{T0}")
    monkeypatch.chdir(tmp_path / "other")
    code, out, _ = cli("check", data, "-m", mapping, "--lookup", "contacts=acme.csv", "--preview", "2", "-q")
    assert code == 0
    assert [json.loads(line)["contactId"] for line in out.splitlines()[:2]] == [555, 556]
    parsed = load_mapping(mapping, {"contacts": "acme.csv"})
    assert parsed.lookups["contacts"].path == "acme.csv"


def test_lookup_without_a_file(tmp_path: Path) -> None:
    doc = contacts_doc(path=None)
    mapping = parse_mapping(doc, base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        Pipeline(mapping, [str(plays(tmp_path / "plays.csv"))])
    assert str(info.value) == "lookup 'contacts' has no file"
    assert info.value.hint == ("give one with --lookup contacts=PATH, or set lookups.contacts.path in the mapping")


def test_lookup_file_missing_a_column(tmp_path: Path, cli: Cli) -> None:
    lookup = csv_file(tmp_path / "contacts.csv", "email,id", "a@example.com,1")
    mapping = write_mapping(tmp_path / "m.yaml", contacts_doc())
    data = plays(tmp_path / "plays.csv")
    code, _, err = cli("check", data, "-m", mapping)
    assert code == 2
    assert err.splitlines() == [
        f"media-import: error: lookup 'contacts': {lookup} has no column 'contact_id'",
        "  hint: available: email, id",
    ]


def test_lookup_file_missing(tmp_path: Path, cli: Cli) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", contacts_doc())
    data = plays(tmp_path / "plays.csv")
    code, _, err = cli("check", data, "-m", mapping)
    assert code == 2
    assert err.splitlines() == [f"media-import: error: {tmp_path / 'contacts.csv'}: no such file or folder"]


def test_lookup_file_header_only(tmp_path: Path) -> None:
    lookup = csv_file(tmp_path / "contacts.csv", "email,contact_id")
    mapping = parse_mapping(contacts_doc(), base_dir=tmp_path)
    with pytest.raises(InputError) as info:
        Pipeline(mapping, [str(plays(tmp_path / "plays.csv"))])
    assert str(info.value) == f"{lookup}: has a header but no data rows"
