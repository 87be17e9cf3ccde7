"""What cannot run here (no Docker engine, no Kubernetes) is checked by the
tools that can read it: `docker-compose config`, `nginx -t`, `haproxy -c`,
and a YAML parser for the manifests; plus the rules that tie them together
(ports, probes, timeouts against the gateways' 54 s ping interval)."""

import re
import subprocess

import pytest
import yaml

from native_cluster import DEPLOY, REPO, Cluster, gateway_bin

PING_INTERVAL_S = 54  # the gateways' default --ping-interval (README)
SHUTDOWN_TIMEOUT_S = 5  # the gateways' default --shutdown-timeout (README)
GATEWAY_SERVICES = {"gateway1": ("gw1", 8081), "gateway2": ("gw2", 8082),
                    "gateway3": ("gw3", 8083)}


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, **kwargs)


def seconds(value):
    """nginx/HAProxy/compose durations: 90s, 1m, 500ms, bare seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(value))
    assert m, f"duration {value!r}"
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def compose_config(*args):
    result = run(["docker-compose", *args, "config"], cwd=REPO)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def mounts(service):
    """(source, target, read-only) of each volume, in Compose 1's short or
    Compose 2's long form."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target, *mode = v.split(":")
            out.append((source, target, mode == ["ro"]))
        else:
            out.append((v["source"], v["target"], bool(v.get("read_only"))))
    return out


def published(service):
    return {int(p["published"]): int(p["target"]) for p in service.get("ports", [])}


def test_load_balancer_configs_pass_nginx_t_and_haproxy_c(tmp_path):
    """The native renderings, exactly as cluster.sh runs them."""
    cluster = Cluster(tmp_path, "nginx")
    cluster.choose_ports()
    result = cluster.run("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_cfg_passes_haproxy_c_with_compose_defaults():
    # Compose's service names do not resolve here; init-addr lets it start
    # without them, as it would before Docker's DNS knows a gateway.
    result = run(["haproxy", "-c", "-f", str(DEPLOY / "haproxy.cfg")])
    assert result.returncode == 0, result.stderr


def test_compose_file_is_valid_and_has_the_topology():
    services = compose_config()["services"]
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == {"secrets", "redis", "haproxy", "gateway", *GATEWAY_SERVICES}
    assert "healthcheck" in services["redis"]
    # Redis requires a password, never given on its command line.
    redis_script = services["redis"]["command"][-1]
    assert "requirepass" in redis_script and "--requirepass" not in redis_script
    assert ("secrets", "/secrets", True) in mounts(services["redis"])
    assert services["redis"]["depends_on"]["secrets"]["condition"] == \
        "service_completed_successfully"
    # The secrets are made at the first up, into the volume, never kept in
    # the repository.
    maker = services["secrets"]
    assert ("secrets", "/secrets", False) in mounts(maker)
    assert "/dev/urandom" in maker["command"][-1] and maker["network_mode"] == "none"
    assert services["redis"]["networks"] == {"redis": None}
    for name in (*GATEWAY_SERVICES, "gateway"):
        gateway = services[name]
        assert gateway["environment"]["GATEWAY_REDIS"] == "redis://redis:6379"
        # The password and the API key from the secrets volume, as files.
        env = gateway["environment"]
        assert env["GATEWAY_REDIS_PASSWORD_FILE"] == "/run/secrets/chat/password", name
        assert env["GATEWAY_API_KEY_FILE"] == "/run/secrets/chat/api-key", name
        assert ("secrets", "/run/secrets/chat", True) in mounts(gateway), name
        assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
        assert seconds(gateway["stop_grace_period"]) > SHUTDOWN_TIMEOUT_S
        assert gateway["build"]["dockerfile"] == "deploy/Dockerfile"
        assert gateway["build"]["target"] == "gateway"
        # The name HAProxy resolves: every gateway container carries it.
        assert gateway["networks"]["default"]["aliases"] == ["gateway"], name
        assert "redis" in gateway["networks"], name
    for name, (gateway_id, port) in GATEWAY_SERVICES.items():
        assert published(services[name]) == {port: 8080}, name
        assert services[name]["environment"]["GATEWAY_ID"] == gateway_id
    # Replicas only behind the load balancer, none until --scale.
    assert services["gateway"]["scale"] == 0 and not published(services["gateway"])
    assert "GATEWAY_ID" not in services["gateway"]["environment"]
    haproxy = services["haproxy"]
    assert published(haproxy) == {8080: 8080}
    assert haproxy["build"]["target"] == "haproxy"
    assert "depends_on" not in haproxy  # stopped with the gateways, not before
    assert {v.split(":")[1] for v in haproxy["volumes"]} == {"/etc/haproxy/haproxy.cfg"}
    for name in services:
        assert "build" in services[name], f"{name} would be pulled from a registry"


def test_compose_nginx_profile_is_valid():
    services = compose_config("--profile", "nginx")["services"]
    nginx = services["nginx"]
    assert nginx["profiles"] == ["nginx"]
    assert published(nginx) == {8090: 8080}
    assert {d: c["condition"] for d, c in nginx["depends_on"].items()} == \
        {name: "service_healthy" for name in GATEWAY_SERVICES}
    mounts = {v.split(":")[1]: v.split(":")[0] for v in nginx["volumes"]}
    assert mounts == {"/etc/nginx/nginx.conf": str(DEPLOY / "nginx.conf"),
                      "/etc/nginx/listen.conf": str(DEPLOY / "compose" / "listen.conf"),
                      "/etc/nginx/upstream-servers.conf":
                          str(DEPLOY / "compose" / "upstream-servers.conf")}


def test_compose_nginx_sends_to_every_gateway_service():
    servers = re.findall(r"^server (\S+)", (DEPLOY / "compose" / "upstream-servers.conf")
                         .read_text(), re.M)
    assert sorted(servers) == [f"{name}:8080" for name in sorted(GATEWAY_SERVICES)]
    assert (DEPLOY / "compose" / "listen.conf").read_text().count("listen 8080;") == 1


def test_haproxy_finds_compose_gateways_by_dns_and_native_ones_by_address():
    cfg = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s*server-template gw 1-\d+ gateway:8080\b", cfg, re.M)
    assert set(re.findall(r'"\$\{(GW\d_ADDR)\}"', cfg)) == {"GW1_ADDR", "GW2_ADDR", "GW3_ADDR"}
    assert '"${LB_BIND-:8080}"' in cfg


def test_load_balancers_refuse_what_is_not_public():
    """Both configs carry the same allowlist of public paths."""
    nginx = (DEPLOY / "nginx.conf").read_text()
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"location / \{\s*default_type text/plain;\s*return 403", nginx)
    assert "http-request deny deny_status 403" in haproxy
    for path in ("/ws", "/echo", "/healthz", "/readyz"):
        assert f"|{path}" in nginx and f" {path}" in haproxy
    assert "/metrics" not in re.sub(r"#.*", "", nginx + haproxy)


def test_load_balancer_timeouts_outlast_the_ping_interval():
    nginx = (DEPLOY / "nginx.conf").read_text()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = re.findall(rf"^\s*{directive}\s+(\S+);", nginx, re.M)
        assert seconds(value) > PING_INTERVAL_S, directive
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    for timeout in ("client", "server", "tunnel"):
        (value,) = re.findall(rf"^\s*timeout {timeout}\s+(\S+)", haproxy, re.M)
        assert seconds(value) > PING_INTERVAL_S, timeout
    ingress = yaml.safe_load((DEPLOY / "k8s" / "ingress.yaml").read_text())
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        value = ingress["metadata"]["annotations"][f"nginx.ingress.kubernetes.io/{key}"]
        assert seconds(value) > PING_INTERVAL_S, key


def k8s_objects():
    objects = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def test_k8s_gateway_deployment_probes_shutdown_and_resources():
    objects = k8s_objects()
    pod = objects[("Deployment", "chat-gateway")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "api": 8090}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    env = {e["name"]: e for e in container["env"]}
    shutdown = seconds(env["GATEWAY_SHUTDOWN_TIMEOUT"]["value"])
    # SIGTERM comes after preStop; the gateway then needs its shutdown timeout.
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + shutdown
    assert env["GATEWAY_REDIS"]["value"] == "redis://redis:6379"
    # Redis's password from the Secret both Deployments mount as a file.
    assert env["GATEWAY_REDIS_PASSWORD_FILE"]["value"] == "/run/secrets/redis/password"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/run/secrets/redis"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "redis-auth"
    redis_pod = objects[("Deployment", "redis")]["spec"]["template"]["spec"]
    assert redis_pod["volumes"][0]["secret"]["secretName"] == "redis-auth"
    assert "requirepass" in redis_pod["containers"][0]["command"][-1]
    assert env["GATEWAY_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_k8s_services_select_their_pods():
    objects = k8s_objects()
    for name, port in (("chat-gateway", "http"), ("redis", "redis")):
        deployment = objects[("Deployment", name)]
        service = objects[("Service", name)]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
        assert service["spec"]["ports"][0]["targetPort"] == port
    backend = objects[("Ingress", "chat-gateway")]["spec"]["rules"][0]["http"]["paths"][0]
    assert backend["backend"]["service"] == {"name": "chat-gateway", "port": {"name": "http"}}


def test_server_api_stays_inside():
    """The server API listens on its own port, which no public path reaches:
    compose publishes no 8090, the public Service and the Ingress name only
    http, and the API's Service is ClusterIP behind a NetworkPolicy."""
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in (*GATEWAY_SERVICES, "gateway"):
        assert "8090" not in str(services[name].get("ports", [])), name
    objects = k8s_objects()
    pod = objects[("Deployment", "chat-gateway")]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["GATEWAY_API_LISTEN"] == "0.0.0.0:8090"
    assert env["GATEWAY_API_KEY_FILE"].startswith("/etc/chat-gateway-api/")
    public = objects[("Service", "chat-gateway")]["spec"]
    assert [p["targetPort"] for p in public["ports"]] == ["http"]
    assert public.get("type", "ClusterIP") == "ClusterIP"
    api = objects[("Service", "chat-gateway-api")]["spec"]
    assert api["type"] == "ClusterIP" and [p["targetPort"] for p in api["ports"]] == ["api"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-key"]
    assert mount["readOnly"] is True and env["GATEWAY_API_KEY_FILE"].startswith(mount["mountPath"])
    (volume,) = [v for v in pod["volumes"] if v["name"] == "api-key"]
    assert volume["secret"]["secretName"] == "chat-gateway-api-key"
    policy = objects[("NetworkPolicy", "chat-gateway-api")]["spec"]
    api_rules = [r for r in policy["ingress"] if {"port": "api", "protocol": "TCP"} in r["ports"]]
    assert api_rules and all(r.get("from") for r in api_rules)


def test_dockerfile_stages_user_healthcheck_and_signal():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)", text, re.M)
    assert stages == [("debian:bookworm-slim", "redis"), ("debian:bookworm-slim", "haproxy"),
                      ("debian:bookworm-slim", "nginx"), ("debian:bookworm", "build"),
                      ("debian:bookworm-slim", "gateway")]
    runtime = text.split("AS gateway", 1)[1]
    assert "build-essential" not in runtime and "cmake" not in runtime
    (user,) = re.findall(r"^USER (\S+)", runtime, re.M)
    assert not user.startswith(("root", "0")), user
    assert re.search(r"^HEALTHCHECK .*\n?.*healthcheck", runtime, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", runtime, re.M)
    # Exec form, and the entrypoint execs: the gateway is PID 1 and gets SIGTERM.
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/gateway-entrypoint"\]$', runtime, re.M)
    assert re.search(r'^exec /usr/local/bin/gateway "\$@"$',
                     (DEPLOY / "gateway-entrypoint.sh").read_text(), re.M)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), source


def test_dockerignore_keeps_what_the_build_reads():
    ignored = [line for line in (REPO / ".dockerignore").read_text().splitlines()
               if line and not line.startswith("#")]
    for needed in ("CMakeLists.txt", "gateway", "include", "client", "deploy", "tests/unit"):
        assert not any(needed == p.rstrip("/") or needed.startswith(p.rstrip("/") + "/")
                       for p in ignored), needed


def test_runtime_packages_cover_the_gateways_libraries():
    binary = gateway_bin()
    result = run([str(DEPLOY / "runtime-packages.sh"), binary])
    assert result.returncode == 0, result.stderr
    packages = set(result.stdout.split())
    for lib in ("libevent", "libjansson", "libssl"):
        assert any(p.startswith(lib) and not p.endswith("-dev") for p in packages), \
            (lib, packages)
    # hiredis 1.2.0 is linked statically (deploy/build-hiredis.sh): bookworm's
    # shared 0.14 must not be loaded.
    assert not any(p.startswith("libhiredis") for p in packages), packages


@pytest.mark.parametrize("script", ["cluster.sh", "healthcheck.sh", "runtime-packages.sh",
                                    "base-images.sh", "gateway-entrypoint.sh"])
def test_scripts_are_strict(script):
    text = (DEPLOY / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
