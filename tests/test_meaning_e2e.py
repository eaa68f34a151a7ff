"""Countries, transfer risk and company names end to end: pages from a local server, the real CLI,
a real webhook receiver, a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

from pwtest import PageServer, cli, write_config

PAGE = """<html><body><h1>Subprocessors</h1><p>Last updated: {date}</p><h2>Infrastructure</h2>
<table><thead><tr><th>Entity Name</th><th>Purpose</th><th>Location</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>"""


def page(rows: list[tuple[str, str, str]], date: str = "November 2, 2026") -> str:
    cells = "".join(f"<tr><td>{e}</td><td>{p}</td><td>{c}</td></tr>" for e, p, c in rows)
    return PAGE.format(date=date, rows=cells)


ALPHA_V1 = [
    ("Amazon Web Services, Inc.", "Hosting", "United States"),
    ("Acme Ltd", "Support", "Ireland"),
    ("Hetzner Online GmbH", "Backups", "Deutschland"),
]
ALPHA_V2 = [
    *ALPHA_V1[:1],
    ("Acme Ltd", "Support", "U.S.A."),
    ("Hetzner Online GmbH", "Offsite backups", "Deutschland"),
    ("Infosys Limited", "Engineering", "India"),
]
BETA = [("AWS", "Hosting", "Ireland"), ("Google Cloud Platform (GCP)", "Analytics", "USA")]
GAMMA = [("Amazon.com, Inc. (Amazon Web Services)", "Hosting", "U.S.A. and Frankfurt")]


def _setup(tmp_path: Path, pages: PageServer, extra: str = "") -> Path:
    pages.serve("/alpha", page(ALPHA_V1))
    pages.serve("/beta", page(BETA))
    pages.serve("/gamma", page(GAMMA))
    vendors = [("Alpha", pages.url("/alpha")), ("Beta", pages.url("/beta")), ("Gamma", pages.url("/gamma"))]
    hook = f"json://127.0.0.1:{pages.port}/hook"
    config = write_config(tmp_path, vendors, [hook], settings='window_kinds = ["transfer"]', extra=extra)
    assert cli(config, "run").returncode == 0
    pages.serve("/alpha", page(ALPHA_V2))
    done = cli(config, "run")
    assert done.returncode == 0, done.stderr
    return config


ALIASES = """
[aliases]
"Acme Group" = ["Acme", "Acme Support Services"]
"""


def test_changes_alert_who_and_entities_through_the_cli(tmp_path: Path, pages: PageServer) -> None:
    config = _setup(tmp_path, pages, ALIASES)

    # the alert says where the data goes first, in words
    [post] = [p for p in pages.posts if p["path"] == "/hook"]
    lines = post["message"].splitlines()
    assert lines[0] == "Transfers:"
    assert set(lines[1:3]) == {
        "- Infosys Limited (added) — India: outside the EEA, no adequacy decision; safeguards needed",
        "- Acme Ltd (location changed) — new transfer to US: adequacy only for DPF-certified organisations",
    }

    # changes --json: the fields, for the changes that add or change a location only
    rows = {
        (c["kind"], c["entity"], c["field"]): c for c in json.loads(cli(config, "changes", "--json").stdout)
    }
    infosys = rows[("added", "Infosys Limited", None)]
    assert infosys["countries"] == ["IN"]
    assert infosys["transfer_risk"] == [{"place": "IN", "adequacy": "none", "condition": ""}]
    acme = rows[("changed", "Acme Ltd", "country")]
    assert acme["countries"] == ["US"]
    assert acme["transfer_risk"] == [
        {"place": "US", "adequacy": "partial", "condition": "adequacy only for DPF-certified organisations"}
    ]
    purpose = rows[("changed", "Hetzner Online GmbH", "purpose")]
    assert purpose["countries"] is None and purpose["transfer_risk"] is None
    # window_kinds = ["transfer"]: only the two changes with a new transfer risk are in the window
    assert infosys["window_opens"] and acme["window_opens"] and purpose["window_opens"] is None

    # CSV: the same fields as text
    csv_rows = {
        r["entity"] + "/" + r["field"]: r
        for r in csv.DictReader(io.StringIO(cli(config, "changes", "--csv").stdout))
    }
    assert (
        csv_rows["Acme Ltd/country"]["transfer_risk"] == "US: adequacy only for DPF-certified organisations"
    )
    assert csv_rows["Infosys Limited/"]["countries"] == "IN"
    exported = json.loads(cli(config, "export", "--format", "json", "--what", "changes").stdout)
    assert {c["entity"]: c["countries"] for c in exported if c["countries"]} == {
        "Infosys Limited": ["IN"],
        "Acme Ltd": ["US"],
    }

    # who: every vendor, under every spelling, both ways
    for query in ("AWS", "Amazon Web Services"):
        who = json.loads(cli(config, "who", query, "--json").stdout)
        assert {(w["vendor"], w["entity"]) for w in who} == {
            ("Alpha", "Amazon Web Services, Inc."),
            ("Beta", "AWS"),
            ("Gamma", "Amazon.com, Inc. (Amazon Web Services)"),
        }
        assert {w["company"] for w in who} == {"Amazon Web Services"}
    gcp = json.loads(cli(config, "who", "gcp", "--json").stdout)
    assert [(w["vendor"], w["matched"]) for w in gcp] == [("Beta", "alias of Google Cloud Platform")]
    # the user's own alias from config.toml
    acme_group = json.loads(cli(config, "who", "Acme Group", "--json").stdout)
    assert [(w["vendor"], w["entity"]) for w in acme_group] == [("Alpha", "Acme Ltd")]
    table = cli(config, "who", "AWS")
    assert table.returncode == 0 and "Amazon.com, Inc. (Amazon Web Services)" in table.stdout

    # entities: the concentration report
    report = json.loads(cli(config, "entities", "--json").stdout)
    assert report[0] == {
        "company": "Amazon Web Services",
        "vendor_count": 3,
        "vendors": ["Alpha", "Beta", "Gamma"],
        "spellings": ["Amazon Web Services, Inc.", "Amazon.com, Inc. (Amazon Web Services)", "AWS"],
        "countries": ["US", "IE", "DE"],
        "location_unrecognised": [],
    }
    assert {r["company"] for r in report[1:]} == {
        "Acme Group",
        "Google Cloud Platform",
        "Hetzner Online GmbH",
        "Infosys Limited",
    }
    shared = list(csv.DictReader(io.StringIO(cli(config, "entities", "--csv", "--min-vendors", "2").stdout)))
    assert shared == [
        {
            "company": "Amazon Web Services",
            "vendor_count": "3",
            "vendors": "Alpha; Beta; Gamma",
            "countries": "US; IE; DE",
            "spellings": "Amazon Web Services, Inc.; Amazon.com, Inc. (Amazon Web Services); AWS",
            "location_unrecognised": "",
        }
    ]


def test_own_transfer_policy_in_config(tmp_path: Path, pages: PageServer) -> None:
    own = f"""
[transfers]
adequate = ["IN"]
none = ["US"]

[[notify]]
name = "transfers-only"
url = "json://127.0.0.1:{pages.port}/transfers"
kinds = ["transfer"]
"""
    config = _setup(tmp_path, pages, own)
    [post] = [p for p in pages.posts if p["path"] == "/hook"]
    assert [p["message"] for p in pages.posts if p["path"] == "/transfers"] == [post["message"]]
    assert (
        "- Acme Ltd (location changed) — new transfer to US: outside the EEA, no adequacy decision; safeguards needed"
        in post["message"]
    )
    assert "- Infosys Limited (added) — India: outside the EEA, adequacy decision" in post["message"]
    rows = {c["entity"]: c for c in json.loads(cli(config, "changes", "--json").stdout) if c["countries"]}
    assert rows["Infosys Limited"]["transfer_risk"] == [] and rows["Infosys Limited"]["window_opens"] is None
    # a change that sends data nowhere new reaches the other target only
    pages.serve("/alpha", page([(e, "Storage" if e.startswith("Hetzner") else p, c) for e, p, c in ALPHA_V2]))
    assert cli(config, "run").returncode == 0
    assert len([p for p in pages.posts if p["path"] == "/hook"]) == 2
    assert len([p for p in pages.posts if p["path"] == "/transfers"]) == 1


def test_bad_transfer_and_alias_tables_are_named(tmp_path: Path) -> None:
    for extra, key in (
        ('[transfers]\nadequate = ["Brazil"]\n', "transfers.adequate"),
        ("[transfers]\npartial = { US = 3 }\n", "transfers.partial.US"),
        ('[transfers]\nplaces = { "Ashburn" = "USA" }\n', "transfers.places.Ashburn"),
        ('[aliases]\n"Acme" = "ACM"\n', "aliases.Acme"),
        ("[settings]\n", "settings"),
    ):
        config = write_config(tmp_path, [("A", "https://a.example/")], extra=extra)
        done = cli(config, "entities")
        assert done.returncode == 2 and key in done.stderr and str(config) in done.stderr, (
            extra,
            done.stderr,
        )
    config = write_config(tmp_path, [("A", "https://a.example/")], settings='window_kinds = ["transfers"]')
    done = cli(config, "run")
    assert done.returncode == 2 and "settings.window_kinds" in done.stderr


def test_datasette_concentration_query_groups_by_the_same_rules(tmp_path: Path, pages: PageServer) -> None:
    from pwtest import ROOT

    config = _setup(tmp_path, pages)
    meta = json.loads((ROOT / "datasette-metadata.json").read_text())
    sql = meta["databases"]["policy_watch"]["queries"]["entity_concentration"]["sql"]

    def top() -> tuple[str, int, str]:
        with sqlite3.connect(tmp_path / "pw.db") as conn:
            rows = conn.execute(sql).fetchall()
        return rows[0][0], rows[0][1], rows[0][3]

    with sqlite3.connect(tmp_path / "pw.db") as conn:
        names = {r[0]: r[1] for r in conn.execute("select entity, company from entity_names")}
    assert names["Infosys Limited"] == "Infosys Limited", names  # a spelling new in the second run is added
    company, vendors, spellings = top()
    assert (company, vendors) == ("Amazon Web Services", 3)
    assert set(spellings.split("; ")) == {
        "AWS",
        "Amazon Web Services, Inc.",
        "Amazon.com, Inc. (Amazon Web Services)",
    }
    # a new alias in config.toml: the next run (nothing else changed) regroups
    config.write_text(config.read_text() + '\n[aliases]\n"Hetzner" = ["Google Cloud Platform", "Acme"]\n')
    assert cli(config, "run").returncode == 0
    assert top()[:2] == ("Amazon Web Services", 3)
    with sqlite3.connect(tmp_path / "pw.db") as conn:
        hetzner = conn.execute(sql + "").fetchall()
    assert ("Hetzner", 2) in [(r[0], r[1]) for r in hetzner]
