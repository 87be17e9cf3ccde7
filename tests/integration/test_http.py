"""Plain HTTP endpoints: health, readiness, metrics, static files."""

from gateway_proc import REPO
from netutil import wait_until
from wsclient import Client

README_METRICS = [
    "gateway_connections", "gateway_rooms", "gateway_frames_in_total",
    "gateway_frames_out_total", "gateway_bytes_in_total", "gateway_bytes_out_total",
    "gateway_errors_total", "gateway_slow_consumer_drops_total",
    "gateway_connections_total", "gateway_redis_up",
]


def test_healthz(gateway):
    status, _, body = gateway.http("/healthz")
    assert (status, body.strip()) == (200, b"ok")


def test_readyz_single_node(gateway):
    assert gateway.http("/readyz")[0] == 200


def test_metrics_names(gateway):
    status, headers, body = gateway.http("/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain"), headers
    text = body.decode()
    missing = [m for m in README_METRICS if m not in text]
    assert not missing, f"metrics missing from /metrics: {missing}\n{text}"
    assert gateway.metrics()["gateway_redis_up"] == 1


async def test_metrics_move(gateway):
    before = gateway.metrics()
    c = await Client.connect(gateway.port, "m")
    await c.join("room")
    await c.send_raw("not json")
    await c.expect_error("bad_json")
    await c.assert_alive()
    after = gateway.metrics()
    assert after["gateway_connections"] == before["gateway_connections"] + 1
    assert after["gateway_connections_total"] == before["gateway_connections_total"] + 1
    assert after["gateway_rooms"] == before["gateway_rooms"] + 1
    for counter in ("gateway_frames_in_total", "gateway_frames_out_total",
                    "gateway_bytes_in_total", "gateway_bytes_out_total"):
        assert after[counter] > before[counter], counter
    assert after.get('gateway_errors_total{code="bad_json"}', 0) == \
        before.get('gateway_errors_total{code="bad_json"}', 0) + 1
    await c.close()
    wait_until(lambda: gateway.metrics()["gateway_connections"] == before["gateway_connections"],
               5, what="gateway_connections back down after close")


def test_static_files_from_client_dir(gateways, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>marker-4711</title>\n")
    (site / "app.js").write_text("console.log('x');\n")
    gw = gateways.start("static", extra=["--client-dir", str(site)])
    status, _, body = gw.http("/")
    assert status == 200 and b"marker-4711" in body
    status, _, body = gw.http("/app.js")
    assert (status, body) == (200, b"console.log('x');\n")
    assert gw.http("/missing.html")[0] == 404


def test_default_client_dir_serves_repo_client(gateway):
    index = REPO / "client" / "index.html"
    assert index.is_file(), f"{index} does not exist (the browser client is missing)"
    status, _, body = gateway.http("/")
    assert status == 200
    assert body == index.read_bytes()
    assert gateway.http("/no-such-file.js")[0] == 404
