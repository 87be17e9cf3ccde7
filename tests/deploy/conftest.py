"""Fixtures for the deployment tests: the native cluster of deploy/cluster.sh
(native_cluster.Cluster), stopped at the end of each test."""

import pytest

from native_cluster import Cluster


@pytest.fixture
def start_cluster(tmp_path):
    """start_cluster(lb) -> a started Cluster; every one is stopped at the end,
    and its log tails are printed (pytest shows them for failed tests)."""
    started = []

    def start(lb):
        cluster = Cluster(tmp_path / f"cluster-{lb}-{len(started)}", lb)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        result = cluster.stop()
        print(f"----- cluster {cluster.dir}\n{cluster.log_tails()}")
        assert result.returncode == 0, f"cluster.sh stop: {result.stdout}{result.stderr}"
        assert cluster.sanitizer_reports() == []
