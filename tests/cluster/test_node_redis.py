"""redis-session through node-redis's cluster client (tests/cluster/node/cluster.js)."""

import json
import os
import subprocess

from test_cluster import every_key_where_it_belongs

HERE = os.path.dirname(os.path.abspath(__file__))


def test_node_redis_cluster_client_routes_every_command(cluster):
    out = subprocess.run(
        ["node", os.path.join(HERE, "node", "cluster.js"), str(cluster.primaries[0].port)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # 20 users x 3 sessions; the rotated one was replaced, so 60 revoked in all.
    assert seen == {"users": 20, "sessions": 60, "revoked": 60}
    every_key_where_it_belongs(cluster)
