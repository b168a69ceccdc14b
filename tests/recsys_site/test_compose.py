"""docker-compose.yml, read as Docker Compose reads it (no Docker engine here to run it): one migration before
anything that uses the database, web replicas behind one load balancer, and every long-running service
restarted when it stops."""
from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP = ("web", "worker", "worker-gpu", "beat")  # the services that run the application's code


def test_the_application_starts_only_after_the_one_migration_has_completed():
    migrate = SERVICES["migrate"]
    assert "migrate" in migrate["command"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in APP:
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["db"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
        assert "migrate" not in str(SERVICES[name]["command"]), name  # no replica races another to migrate


def test_web_scales_behind_the_proxy_that_alone_publishes_a_port():
    assert "ports" not in SERVICES["web"]  # `--scale web=3` would fight over a host port
    assert [name for name, service in SERVICES.items() if "ports" in service] == ["proxy"]
    assert SERVICES["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    config = (Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf").read_text()
    mount = next(volume for volume in SERVICES["proxy"]["volumes"] if volume.startswith("./deploy/nginx.conf:"))
    assert mount.endswith("/etc/nginx/conf.d/default.conf:ro")
    assert "http://web:8000" in config and "resolver 127.0.0.11" in config  # every replica, re-resolved
    assert SERVICES["web"]["environment"]["TRUSTED_PROXY"] == "1"
    assert SERVICES["web"]["environment"]["DATABASE_URL"] == SERVICES["worker"]["environment"]["DATABASE_URL"]


def test_every_long_running_service_is_restarted_and_the_models_can_be_shared_across_machines():
    for name, service in SERVICES.items():
        if name != "migrate":
            assert service["restart"] == "unless-stopped", name
    for name in APP:
        environment = SERVICES[name]["environment"]
        assert {"MODEL_STORAGE", "MODEL_STORAGE_BUCKET", "AWS_ACCESS_KEY_ID"} <= set(environment), name
        assert environment["MODEL_STORAGE"] is None  # passed on from the host, unset by default
