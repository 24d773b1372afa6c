"""What the analyst tests share: an archive holding every case the views must count right, the
SQL of the analysts' dashboard and of docs/analysts.md, and the one way Grafana macros are
replaced so that SQL runs outside Grafana (bench/analytics.py uses it too)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "twilio-archive-analysts.json"
GUIDE = ROOT / "docs" / "analysts.md"

# The dashboard uses exactly these macros and one variable (tests/unit/test_deploy.py holds it to
# them): $__timeFilter(col) -> col BETWEEN the range's start and end, as Grafana expands it up to
# the format of the bounds; $account -> the chosen accounts as a quoted list, as Grafana formats a
# multi-value variable in SQL (for All, every value of the variable's own query).
MACROS = re.compile(r"\$__(timeFilter|timeFrom|timeTo)\(([^)]*)\)")
RANGE_START = "(now() - interval '{days} days')"
RANGE_END = "now()"


def substitute(sql: str, *, accounts: list[str], days: int = 400) -> str:
    """`sql` with the dashboard's Grafana macros replaced by a range of the last `days` days, and
    $account by `accounts`."""
    start = RANGE_START.format(days=int(days))
    assert accounts, "Grafana sends at least one account; IN () is not SQL"
    sql = sql.replace("$account", ", ".join("'" + a.replace("'", "''") + "'" for a in accounts))

    def expand(match: re.Match) -> str:
        name, argument = match.groups()
        if name == "timeFilter":
            return f"{argument.strip()} BETWEEN {start} AND {RANGE_END}"
        return start if name == "timeFrom" else RANGE_END

    expanded = MACROS.sub(expand, sql)
    assert "$" not in expanded, f"a Grafana macro or variable this test does not expand: {expanded}"
    return expanded


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.extend(panel.get("panels", []) if panel["type"] == "row" else [panel])
    return out


def account_query(board: dict) -> str:
    """The SQL of the dashboard's $account variable: the accounts All stands for."""
    return next(v for v in board["templating"]["list"] if v["name"] == "account")["query"]


def panel_sql(board: dict) -> list[tuple[str, str]]:
    """(panel title, rawSql) for every query of every panel."""
    return [(p["title"], t["rawSql"]) for p in panels(board) for t in p.get("targets", [])]


def guide_queries() -> list[tuple[str, str]]:
    """(question, SQL) for each numbered question of docs/analysts.md: a `### N. ...` heading and
    the first ```sql block under it."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(r"^### (\d+\. [^\n]+)\n(?:(?!^### ).)*?```sql\n(.*?)```", text, re.S | re.M)
    return [(title.strip(), sql.strip()) for title, sql in found]
