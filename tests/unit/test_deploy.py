"""deploy/ agrees with the code it deploys.

Every manifest, unit and image file here is read as data and held to the program: the commands
and flags they pass must parse with the real argument parser, the probes must reach the port
the service is told to serve, the metric names in the alert rules and the dashboard must be
ones /metrics exposes, and no file may hold a credential. No network, no Docker, no cluster;
`promtool` runs the alert rules' unit tests when it is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "twilio-archive.json"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
SYSTEMD = DEPLOY / "systemd"
OPERATIONS = ROOT / "docs" / "operations.md"

METRIC = re.compile(r"\btwilio_archive_[a-z_]+")
# Settings whose values are credentials: they may only come from a Secret or an env file.
SENSITIVE = re.compile(r"TOKEN|SECRET|PASSWORD|DATABASE_URL|BODY_KEY|API_KEY")
# A placeholder: says CHANGE_ME, or is an account / API key SID made of x's.
PLACEHOLDER = re.compile(r"CHANGE_ME|^(AC|SK)x{32}$")

# The labels of each metric family, as the product contract lists them (docs/operations.md).
# test_contract_labels_match_the_code holds the code to this table; the expressions are
# checked against it.
LABELS = {
    "twilio_archive_pages": {"account", "stream"},
    "twilio_archive_records_fetched": {"account", "stream"},
    "twilio_archive_rows_written": {"account", "stream", "change"},
    "twilio_archive_records_deleted": {"account", "stream"},
    "twilio_archive_records_outside_window": {"account", "stream"},
    "twilio_archive_scan_list_order": {"account", "stream", "kind", "order"},
    "twilio_archive_records_rejected": {"account", "stream"},
    "twilio_archive_hydrations": {"account", "outcome"},
    "twilio_archive_media_lists": {"account", "outcome"},
    "twilio_archive_media_items": {"account", "outcome"},
    "twilio_archive_media_archived": {"account"},
    "twilio_archive_media_owed": {"account"},
    "twilio_archive_api_responses": {"api", "code"},
    "twilio_archive_retries": {"target", "cause"},
    "twilio_archive_rate_limited": {"api"},
    "twilio_archive_concurrency_window": {"account"},
    "twilio_archive_requests_in_flight": {"account"},
    "twilio_archive_twilio_concurrent_requests": {"account"},
    "twilio_archive_scans": {"account", "stream", "kind", "outcome"},
    "twilio_archive_scan_duration_seconds": {"account", "stream", "kind"},
    "twilio_archive_last_success_timestamp_seconds": {"account", "stream", "kind"},
    "twilio_archive_newest_record_age_seconds": {"account", "stream"},
    "twilio_archive_rounds": set(),
    "twilio_archive_accounts_unscanned": set(),
    "twilio_archive_ready": set(),
    "twilio_archive_analytics_refresh_seconds": {"view"},
    "twilio_archive_analytics_refresh_days": {"view"},
    "twilio_archive_analytics_last_refresh_timestamp_seconds": {"view"},
}
# Labels Prometheus adds to every scraped series (target labels).
TARGET_LABELS = {"instance", "job", "namespace", "pod"}


# ---- helpers ----------------------------------------------------------------------------------


def load_yaml(path: Path) -> list:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def k8s(kind: str, name: str) -> dict:
    found = [doc for path in sorted(K8S.glob("*.yaml")) for doc in load_yaml(path)
             if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name]
    assert len(found) == 1, f"expected one {kind} {name} under deploy/kubernetes, found {len(found)}"
    return found[0]


def deployment() -> dict:
    return k8s("Deployment", "twilio-archive")


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def main_container(obj: dict) -> dict:
    containers = pod_spec(obj)["containers"]
    assert len(containers) == 1, "one container per pod: the archiver"
    return containers[0]


def all_containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def flag_value(argv: list[str], flag: str) -> str:
    for i, arg in enumerate(argv):
        if arg == flag:
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not given in {argv}")


def compose() -> dict:
    (doc,) = load_yaml(COMPOSE)
    return doc


def dockerfile() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, split into stages: [[(KEYWORD, arguments), ...], ...]."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if raw.strip().startswith("#"):
            continue  # comments, also inside a continued instruction
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest.strip()))
    return stages


def final_stage() -> list[tuple[str, str]]:
    return dockerfile()[-1]


def instruction(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [rest for k, rest in stage if k == keyword]
    assert found, f"the final stage of deploy/Dockerfile has no {keyword}"
    return found[-1]  # the last one is the one in force


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file: section -> [(key, value)], keeping repeated keys."""
    sections: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            sections.setdefault(section, [])
            continue
        key, _, value = line.partition("=")
        sections[section].append((key.strip(), value.strip()))
    return sections


def values(sections: dict, section: str, key: str) -> list[str]:
    return [v for k, v in sections.get(section, []) if k == key]


def one(sections: dict, section: str, key: str) -> str:
    found = values(sections, section, key)
    assert len(found) == 1, f"[{section}] {key}= should be set once, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    from sync import cli

    return cli.build_parser()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def check_command(parser: argparse.ArgumentParser, argv: list[str], where: str) -> list[str]:
    """Problems with running `python -m sync ARGV`: an unknown subcommand or flag, or
    arguments the parser refuses."""
    commands = subcommands(parser)
    if not argv or argv[0] not in commands:
        return [f"{where}: {argv[:1]} is not a command of twilio-archive ({', '.join(sorted(commands))})"]
    options = {s for a in commands[argv[0]]._actions for s in a.option_strings}
    problems = [f"{where}: `{argv[0]}` has no flag {arg.split('=')[0]}"
                for arg in argv[1:] if arg.startswith("--") and arg.split("=")[0] not in options]
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        problems.append(f"{where}: `{shlex.join(argv)}` is refused by the parser (exit {exc.code})")
    return problems


def k8s_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml(path):
            if doc.get("kind") not in ("Deployment", "Job", "CronJob", "StatefulSet"):
                continue
            for c in all_containers(doc):
                # The image's ENTRYPOINT is `python -m sync`: its arguments are `args`. A manifest
                # that sets `command` replaces the entry point and must name it itself.
                assert "command" not in c, f"{path.name} {c['name']}: use args, keep the image's entry point"
                out.append((f"{path.name} {c['name']}", [str(a) for a in c["args"]]))
    return out


def compose_commands() -> list[tuple[str, list[str]]]:
    out = []
    for name, service in compose()["services"].items():
        if "command" in service:
            command = service["command"]
            argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
            out.append((f"docker-compose.yml {name}", argv))
    return out


def console_script() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    (name,) = [n for n, target in scripts.items() if target == "sync.cli:main"]
    return name


def systemd_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted(SYSTEMD.glob("*.service")):
        for line in values(unit(path), "Service", "ExecStart"):
            argv = shlex.split(line)
            assert Path(argv[0]).name == console_script(), f"{path.name}: ExecStart should run {console_script()}"
            out.append((path.name, argv[1:]))
    return out


def dockerfile_command() -> list[str]:
    return json.loads(instruction(final_stage(), "CMD"))


def alert_rules() -> list[dict]:
    (doc,) = load_yaml(PROMETHEUS / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_panels() -> list[dict]:
    out = []
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
        else:
            out.append(panel)
    return out


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    for var in dashboard()["templating"]["list"]:
        query = var.get("query")
        if var["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def family(sample: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count"):
        if sample.endswith(suffix) and sample[: -len(suffix)] in LABELS:
            return sample[: -len(suffix)]
    return sample


def exposed_by_registry() -> set[str]:
    """Sample names read off the text /metrics serves for a fresh Metrics(): its # TYPE lines
    (labelled series have no samples until first used, but every family declares itself)."""
    import prometheus_client

    from sync import metrics

    text = prometheus_client.generate_latest(metrics.Metrics().registry).decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {name, f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)  # counters are declared with their _total name
    return names


# ---- every file parses ------------------------------------------------------------------------


def test_every_yaml_file_under_deploy_parses():
    paths = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
    names = {p.relative_to(DEPLOY).as_posix() for p in paths}
    assert {"docker-compose.yml", "kubernetes/deployment.yaml", "kubernetes/service.yaml",
            "kubernetes/secret.example.yaml", "kubernetes/backfill-job.yaml",
            "prometheus/alerts.yml", "prometheus/prometheus.yml"} <= names
    for path in paths:
        assert load_yaml(path), f"{path.relative_to(ROOT)} is empty"


def test_every_command_in_deploy_is_a_real_command_with_real_flags(parser):
    commands = [*k8s_commands(), *compose_commands(), *systemd_commands(),
                ("Dockerfile CMD", dockerfile_command())]
    used = {argv[0] for _, argv in commands}
    assert {"run", "migrate", "backfill"} <= used
    problems = [p for where, argv in commands for p in check_command(parser, argv, where)]
    assert not problems, "\n".join(problems)


def test_the_command_check_catches_a_wrong_flag(parser):
    # The check above would pass vacuously if check_command accepted anything.
    assert check_command(parser, ["run", "--http-port", "8000"], "ok") == []
    assert check_command(parser, ["serve"], "x")
    assert check_command(parser, ["run", "--http-prot", "8000"], "x")
    assert check_command(parser, ["backfill", "--source", "everything"], "x")


# ---- the image --------------------------------------------------------------------------------


def test_image_runs_as_a_fixed_numeric_non_root_user():
    user = instruction(final_stage(), "USER")
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: Kubernetes can only verify a numeric user"
    assert int(user.split(":")[0]) != 0
    for group in user.split(":")[1:]:
        assert int(group) != 0


def test_image_is_multi_stage_and_starts_the_service():
    stages = dockerfile()
    assert len(stages) >= 2, "build the wheel in one stage, run it in another"
    final = stages[-1]
    assert json.loads(instruction(final, "ENTRYPOINT")) == ["python", "-m", "sync"]
    cmd = dockerfile_command()
    port = flag_value(cmd, "--http-port")
    # A container's loopback is its own: the port must be open on every interface.
    assert flag_value(cmd, "--http-host") == "0.0.0.0"
    assert port in instruction(final, "EXPOSE").split()
    healthcheck = instruction(final, "HEALTHCHECK")
    assert f":{port}/healthz" in healthcheck
    assert "urllib" in healthcheck, "slim images have no curl"
    env = " ".join(rest for k, rest in final if k == "ENV")
    assert re.search(r"PYTHONDONTWRITEBYTECODE=1", env)
    assert re.search(r"PYTHONUNBUFFERED=1", env)


def test_image_build_context_is_filtered_but_keeps_what_the_build_copies():
    ignore = DEPLOY / "Dockerfile.dockerignore"  # BuildKit's name for deploy/Dockerfile's ignore file
    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    for heavy in (".venv", ".git", "tests"):
        assert heavy in patterns, f"{heavy} should not be sent to the Docker daemon"
    copied = [src for stage in dockerfile() for k, rest in stage if k == "COPY" and "--from" not in rest
              for src in rest.split()[:-1]]
    assert copied
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
        excluded = [p for p in patterns if not p.startswith("!") and fnmatch(src, p.rstrip("/"))]
        assert not excluded, f"COPY {src} would fail: the build context excludes it ({excluded})"


def test_image_and_manifests_name_the_same_user():
    uid = int(instruction(final_stage(), "USER").split(":")[0])
    for obj in (deployment(), k8s("Job", "twilio-archive-backfill")):
        assert pod_spec(obj)["securityContext"]["runAsUser"] == uid


# ---- Kubernetes -------------------------------------------------------------------------------


def test_deployment_probes_ask_the_port_the_service_serves():
    dep = deployment()
    container = main_container(dep)
    args = [str(a) for a in container["args"]]
    assert args[0] == "run"
    port = int(flag_value(args, "--http-port"))
    assert flag_value(args, "--http-host") == "0.0.0.0", "the kubelet probes the pod's IP, not its loopback"
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert port in {p["containerPort"] for p in container["ports"]}

    def target(probe: str) -> tuple[str, int]:
        get = container[probe]["httpGet"]
        p = get["port"]
        return get["path"], named[p] if isinstance(p, str) else int(p)

    assert target("livenessProbe") == ("/healthz", port)
    assert target("startupProbe") == ("/healthz", port)
    assert target("readinessProbe") == ("/readyz", port)
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] == "/metrics"


def test_deployment_runs_replicas_after_migrating():
    dep = deployment()
    assert dep["spec"]["replicas"] >= 2, "the job queue makes a second replica safe: it shares the accounts and is the failover"
    (init,) = pod_spec(dep)["initContainers"]
    assert [str(a) for a in init["args"]] == ["migrate"]
    assert init["image"] == main_container(dep)["image"], "migrate with the code that will run"
    # `run` stops within 10 s of SIGTERM; Kubernetes must wait for that before it kills.
    assert pod_spec(dep)["terminationGracePeriodSeconds"] > 10


def test_pods_are_locked_down():
    for obj in (deployment(), k8s("Job", "twilio-archive-backfill")):
        name = obj["metadata"]["name"]
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec.get("automountServiceAccountToken") is False, f"{name}: it never calls the Kubernetes API"
        mounts_tmp = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in all_containers(obj):
            where = f"{name}/{c['name']}"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "memory" in c["resources"]["limits"], where
            assert "memory" in c["resources"]["requests"], where
            # A read-only root: whatever reaches for a temporary file gets a writable /tmp.
            assert any(m["mountPath"] == "/tmp" and m["name"] in mounts_tmp for m in c["volumeMounts"]), where
            # Credentials only through the Secret.
            assert {"secretRef": {"name": "twilio-archive"}} in c["envFrom"], where
            for env in c.get("env", []):
                if SENSITIVE.search(env["name"]):
                    assert "value" not in env, f"{where}: {env['name']} must come from a Secret"


def test_service_selects_the_deployment_pods_on_the_served_port():
    dep, svc = deployment(), k8s("Service", "twilio-archive")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    container = main_container(dep)
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    port = int(flag_value([str(a) for a in container["args"]], "--http-port"))
    for p in svc["spec"]["ports"]:
        target = p["targetPort"]
        assert (named[target] if isinstance(target, str) else target) == port


def test_backfill_job_retries_safely():
    job = k8s("Job", "twilio-archive-backfill")
    assert pod_spec(job)["restartPolicy"] == "OnFailure"
    assert job["spec"]["backoffLimit"] >= 1
    assert str(main_container(job)["args"][0]) == "backfill"
    assert [str(a) for a in pod_spec(job)["initContainers"][0]["args"]] == ["migrate"]


def test_kustomization_lists_existing_manifests_but_not_the_examples():
    (doc,) = load_yaml(K8S / "kustomization.yaml")
    resources = doc["resources"]
    assert {"deployment.yaml", "service.yaml"} <= set(resources)
    for r in resources:
        assert (K8S / r).is_file(), r
    # Applying placeholders would overwrite the real Secret.
    assert "secret.example.yaml" not in resources


def test_secret_example_holds_placeholders_only():
    secret = k8s("Secret", "twilio-archive")
    assert "data" not in secret, "base64 hides what a value is: use stringData for the example"
    data = secret["stringData"]
    assert {"DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"} <= data.keys()
    for key, value in data.items():
        if key == "DATABASE_URL":
            parts = urlsplit(value)
            assert parts.scheme == "postgresql"
            assert parts.password == "CHANGE_ME", "the example's database password must be a placeholder"
        else:
            assert PLACEHOLDER.search(value), f"{key}={value!r} is not an obvious placeholder"


def test_env_file_examples_hold_placeholders_only():
    for path in sorted(DEPLOY.glob("*.env.example")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            assert "#" not in value, f"{path.name}: {key}: systemd keeps a trailing comment in the value"
            if SENSITIVE.search(key):
                secret = urlsplit(value).password if key == "DATABASE_URL" else value
                assert secret == "CHANGE_ME", f"{path.name}: {key} must be a placeholder"
            elif key.endswith("_SID"):
                assert PLACEHOLDER.search(value), f"{path.name}: {key} must be a placeholder"
    assert (DEPLOY / "twilio.env.example").is_file()


def test_no_credentials_in_the_image_or_the_plain_files():
    env = " ".join(rest for stage in dockerfile() for k, rest in stage if k in ("ENV", "ARG"))
    assert not SENSITIVE.search(env), "no credential may be baked into the image"
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        keys = environment.keys() if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        assert not [k for k in keys if SENSITIVE.search(k)], f"compose {name}: credentials belong in an env_file"
    for path in sorted(SYSTEMD.glob("*.service")):
        for assignment in values(unit(path), "Service", "Environment"):
            assert not SENSITIVE.search(assignment), f"{path.name}: credentials belong in EnvironmentFile"
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert {"twilio.env", "postgres.env"} <= set(ignored), "the filled-in env files must never be committed"


# ---- docker compose ---------------------------------------------------------------------------


def test_compose_worker_starts_after_the_migration_completed():
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    worker = services["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert worker["restart"] == "unless-stopped"
    assert int(worker["stop_grace_period"].rstrip("s")) > 10


def test_compose_worker_publishes_the_port_it_serves():
    worker = compose()["services"]["worker"]
    argv = [str(a) for a in worker["command"]]
    port = flag_value(argv, "--http-port")
    assert flag_value(argv, "--http-host") == "0.0.0.0"
    assert any(str(p).split(":")[-1].split("/")[0] == port for p in worker["ports"])


def test_compose_builds_the_image_from_the_repository_root():
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT, name
        assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE
        assert service["env_file"] == "twilio.env"
        assert (DEPLOY / "twilio.env.example").is_file()
    # One-shot containers do not serve /healthz: the image's HEALTHCHECK must not judge them.
    for name in ("migrate", "backfill"):
        assert compose()["services"][name]["healthcheck"] == {"disable": True}


# ---- systemd ----------------------------------------------------------------------------------


def test_systemd_unit_runs_the_service_hardened():
    u = unit(SYSTEMD / "twilio-archive.service")
    assert one(u, "Service", "Type") == "exec"
    user = one(u, "Service", "User")
    assert user not in ("root", "0")
    assert one(u, "Service", "EnvironmentFile") == "/etc/twilio-archive/env"
    assert one(u, "Service", "Restart") == "on-failure"
    assert one(u, "Service", "KillSignal") == "SIGTERM"
    assert int(one(u, "Service", "TimeoutStopSec")) > 10
    for key, expected in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes")):
        assert one(u, "Service", key) == expected, key
    migrate = "twilio-archive-migrate.service"
    assert migrate in " ".join(values(u, "Unit", "Requires")).split()
    assert migrate in " ".join(values(u, "Unit", "After")).split()
    m = unit(SYSTEMD / migrate)
    assert one(m, "Service", "Type") == "oneshot"
    assert one(m, "Service", "User") == user
    assert shlex.split(one(m, "Service", "ExecStart"))[1:] == ["migrate"]


# ---- metrics: alerts and dashboard ------------------------------------------------------------


def used_metrics() -> dict[str, set[str]]:
    """Metric names in each expression of the alert rules and the dashboard: {name: {where}}."""
    used: dict[str, set[str]] = {}
    sources = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    sources += [("dashboard", e) for e in dashboard_exprs()]
    for where, expr in sources:
        for name in METRIC.findall(expr):
            used.setdefault(name, set()).add(where)
    return used


def test_metric_names_in_alerts_and_dashboard_are_exposed_by_the_service():
    from sync import metrics

    used = used_metrics()
    assert len(used) >= 10
    exposed = set(metrics.EXPOSED)
    missing = {name: sorted(where) for name, where in used.items() if name not in exposed}
    assert not missing, f"not in sync.metrics.EXPOSED: {missing}"
    # EXPOSED is itself held to what /metrics actually declares.
    actual = exposed_by_registry()
    missing = {name: sorted(where) for name, where in used.items() if name not in actual}
    assert not missing, f"not served on /metrics: {missing}"


def test_every_exposed_metric_is_on_the_dashboard_and_in_the_guide():
    from sync import metrics

    families = {family(name) for name in metrics.EXPOSED}
    on_dashboard = {family(name) for name in METRIC.findall(" ".join(dashboard_exprs()))}
    assert families - on_dashboard == set(), "metrics the dashboard does not show"
    guide = OPERATIONS.read_text(encoding="utf-8")
    assert {f for f in families if f not in guide} == set(), "metrics docs/operations.md does not explain"


def test_contract_labels_match_the_code():
    from prometheus_client.metrics import MetricWrapperBase

    from sync import metrics

    # prometheus_client has no public accessor for a metric's label names; _labelnames is the
    # attribute every version since 0.4 keeps them in.
    found = {m._name: set(m._labelnames) for m in vars(metrics.Metrics()).values()
             if isinstance(m, MetricWrapperBase)}
    assert found == LABELS


def test_expressions_select_only_labels_the_metric_has():
    problems = []
    sources = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    sources += [("dashboard", e) for e in dashboard_exprs()]
    for where, expr in sources:
        for name, selector in re.findall(r"(twilio_archive_[a-z_]+)\{([^}]*)\}", expr):
            allowed = LABELS.get(family(name), set()) | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
            for label in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", selector):
                if label not in allowed:
                    problems.append(f"{where}: {name} has no label {label}")
        metrics_in = {family(n) for n in METRIC.findall(expr)}
        allowed = set().union(*(LABELS.get(m, set()) for m in metrics_in)) | TARGET_LABELS | {"le"}
        for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            for label in filter(None, (s.strip() for s in group.split(","))):
                if label not in allowed:
                    problems.append(f"{where}: `{expr}` groups by {label}, which none of its metrics has")
    assert not problems, "\n".join(problems)


def test_alert_rules_are_complete():
    rules = alert_rules()
    names = {r["alert"] for r in rules}
    assert {"TwilioArchiveStale", "TwilioArchiveScansFailing", "TwilioArchiveRateLimited",
            "TwilioArchiveNoRounds", "TwilioArchiveAccountUnscanned", "TwilioArchiveNotReady", "TwilioArchiveDown"} <= names
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning", "info"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert re.fullmatch(r"\d+[smh]", r["for"]), r["alert"]
    # The target-down rule must name the job the example scrape config defines.
    (config,) = load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {c["job_name"] for c in config["scrape_configs"]}
    down = next(r for r in rules if r["alert"] == "TwilioArchiveDown")
    assert re.search(r'absent\(up\{job="([^"]+)"\}', down["expr"]).group(1) in jobs
    assert "alerts.yml" in config["rule_files"]
    guide = OPERATIONS.read_text(encoding="utf-8")
    assert {n for n in names if n not in guide} == set(), "alerts docs/operations.md does not explain"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) is not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"],
                 ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


# ---- the dashboard ----------------------------------------------------------------------------


def test_dashboard_panels_have_a_data_source_and_queries():
    d = dashboard()
    assert d["schemaVersion"] >= 36
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    account = variables["account"]
    query = account["query"]["query"] if isinstance(account["query"], dict) else account["query"]
    assert query == "label_values(twilio_archive_pages_total, account)"
    panels = dashboard_panels()
    assert len(panels) >= 9
    ids = [p["id"] for p in d["panels"]] + [p["id"] for p in panels if p not in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t.get("datasource", p["datasource"]) == p["datasource"], p["title"]
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24, p["title"]


def test_dashboard_filters_by_the_account_variable():
    # A panel over a metric with an account label that ignored $account would show every
    # account whatever the viewer picked.
    for p in dashboard_panels():
        for t in p["targets"]:
            for name, selector in re.findall(r"(twilio_archive_[a-z_]+)(\{[^}]*\})?", t["expr"]):
                if "account" in LABELS[family(name)]:
                    assert 'account=~"$account"' in selector, f"{p['title']}: {name} ignores $account"


def test_dashboard_quantiles_come_from_histogram_buckets():
    quantiles = [t["expr"] for p in dashboard_panels() for t in p["targets"] if "histogram_quantile" in t["expr"]]
    assert quantiles
    for expr in quantiles:
        assert "_bucket" in expr and re.search(r"by \([^)]*\ble\b", expr), expr


# ---- the analysts' dashboard (its SQL runs in tests/integration/test_analyst_views.py) --------

ANALYSTS_DASHBOARD = DEPLOY / "grafana" / "twilio-archive-analysts.json"
POSTGRES = {"type": "grafana-postgresql-datasource", "uid": "${datasource}"}


def test_analysts_dashboard_reads_the_archive_through_one_postgres_data_source():
    d = json.loads(ANALYSTS_DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == POSTGRES["type"]
    assert variables["account"]["datasource"] == POSTGRES
    panels = [p for p in d["panels"] if p["type"] != "row"]
    assert {p["title"] for p in panels} >= {"Daily messages by status", "Delivery rate", "Time to delivered (median, p95)",
                                            "Spend per day", "Top error codes", "Top numbers"}
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for p in panels:
        assert p["datasource"] == POSTGRES and p["targets"], p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        for t in p["targets"]:
            assert t["rawQuery"] and t["format"] in ("time_series", "table"), p["title"]
            # Only what tests/analysts.py substitutes, so the suite runs exactly what Grafana would.
            assert set(re.findall(r"\$\w+", t["rawSql"])) <= {"$__timeFilter", "$account"}, p["title"]
            assert "twilio." in t["rawSql"] and not re.search(r"\b(insert|update|delete|drop)\b", t["rawSql"], re.I)
