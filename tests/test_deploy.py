"""deploy/: the Compose file against the Compose specification's JSON schema, and nginx -t on
the site config as `make cluster` renders it."""

from __future__ import annotations

import json
import re
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from ccsite.cluster import check_nginx, render_nginx

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def compose_schema() -> dict:
    # The specification's schema as check-jsonschema vendors it (with its licence).
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    return json.loads(text)


def compose_file() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_the_compose_file_follows_the_compose_specification():
    schema = compose_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(compose_file())


def test_the_schema_check_catches_a_broken_compose_file():
    broken = compose_file()
    broken["services"]["gateway"]["deploy"]["replicas"] = {"count": 2}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema())


def test_the_compose_topology_uses_the_project_image_and_shares_postgres_and_redis():
    services = compose_file()["services"]
    assert {"postgres", "redis", "gateway", "nginx"} <= services.keys()
    assert services["migrate"]["build"]["context"] == ".."
    assert (DEPLOY / services["migrate"]["build"]["context"] / "Dockerfile").is_file()
    gateway = services["gateway"]
    assert gateway["image"] == services["migrate"]["image"] and gateway["deploy"]["replicas"] >= 2
    assert gateway["environment"]["DATABASE_URL"].startswith("postgres://")
    assert gateway["environment"]["REDIS_URL"].startswith("redis://redis:")
    mounted = {volume.split(":")[0] for volume in services["nginx"]["volumes"]}
    assert all((DEPLOY / path).is_file() for path in mounted)


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="no nginx")
def test_nginx_accepts_the_site_config(tmp_path):
    conf = render_nginx(tmp_path, host="127.0.0.1", port=18080, gateway_ports=[18001, 18002])
    result = check_nginx(conf)
    assert result.returncode == 0, result.stderr
    site = (tmp_path / "ccsite.conf").read_text()
    assert "listen 127.0.0.1:18080;" in site and "proxy_buffering off;" in site


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="no nginx")
def test_nginx_t_rejects_a_broken_site(tmp_path, monkeypatch):
    broken = tmp_path / "broken.conf"
    broken.write_text(
        (DEPLOY / "nginx" / "ccsite.conf").read_text().replace("proxy_buffering off;", "proxy_buffering")
    )
    monkeypatch.setattr("ccsite.cluster.NGINX_SITE", broken)
    conf = render_nginx(tmp_path / "out", host="127.0.0.1", port=18080, gateway_ports=[18001])
    assert check_nginx(conf).returncode != 0


def test_the_image_holds_every_project_app():
    from django.conf import settings

    root = DEPLOY.parent
    copied = set(re.findall(r"^COPY (\S+) \./", (root / "Dockerfile").read_text(), re.MULTILINE))
    local_apps = {app for app in settings.INSTALLED_APPS if (root / app / "apps.py").is_file()}
    assert local_apps and local_apps <= copied
    assert {"ccsite", "templates", "manage.py"} <= copied


def test_nginx_passes_the_live_view_websocket_with_a_long_read_timeout():
    site = (DEPLOY / "nginx" / "ccsite.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade;" in site
    assert "proxy_set_header Connection $ccsite_connection;" in site
    websocket_location = re.search(r"location /ws/ \{(.*?)\}", site, re.DOTALL)
    assert websocket_location and "proxy_read_timeout 3600s;" in websocket_location.group(1)
    from usage.routing import websocket_urlpatterns

    assert all(str(pattern.pattern).startswith("ws/") for pattern in websocket_urlpatterns)


def test_nginx_drops_idle_gateway_connections_before_a_draining_gateway_closes_them():
    from ccsite.shutdown import IDLE_CONNECTION_SECONDS

    for name in ("ccsite-upstream.conf", "ccsite-upstream-compose.conf"):
        seconds = re.search(r"keepalive_timeout (\d+)s;", (DEPLOY / "nginx" / name).read_text())
        assert seconds and int(seconds.group(1)) < IDLE_CONNECTION_SECONDS


def test_every_deployed_gateway_runs_daphne_on_uvloop():
    """The systemd unit, the Compose gateway and the image start the gateway as `make run` does."""
    serve = ["python", "-m", "ccsite.serve", "-b"]
    unit = (DEPLOY / "systemd" / "ccsite@.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert exec_start.split()[1:4] == serve[1:] and exec_start.split()[0].endswith("/bin/python")
    assert exec_start.split()[-1] == "ccsite.asgi:application"
    assert compose_file()["services"]["gateway"]["entrypoint"][:4] == serve
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text()
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert json.loads(cmd)[:4] == serve
    assert not re.search(r"\bdaphne -b", unit + dockerfile + (DEPLOY / "docker-compose.yml").read_text())
