// redis-session through node-redis's cluster client: every command routed by the client
// from the key it is given (the ROUTE key, the token, the value), never by hand.
// Usage: node cluster.js <port of any node>. Prints one JSON line of what it saw; exits 1
// on any mismatch.
const { createCluster } = require("redis");

async function main() {
  const port = Number(process.argv[2]);
  const cluster = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${port}` }] });
  cluster.on("error", (e) => console.error("cluster error", e));
  await cluster.connect();
  // sendCommand(firstKey, isReadonly, args): node-redis routes by the first key's slot.
  const cmd = (key, readonly, ...args) => cluster.sendCommand(key, readonly, args);
  const seen = { users: 0, sessions: 0, revoked: 0 };
  const tokens = {};
  for (let u = 0; u < 20; u++) {
    const user = `node-${u}`;
    const route = `user_id:{${user}}`;
    tokens[user] = [];
    for (let i = 0; i < 3; i++) {
      const reply = JSON.parse(
        await cmd(route, false, "SESSION.CREATE", JSON.stringify({ user_id: user, i }), "ROUTE", route),
      );
      tokens[user].push(reply.token);
      seen.sessions++;
    }
    seen.users++;
  }
  for (const [user, ts] of Object.entries(tokens)) {
    for (const t of ts) {
      const data = JSON.parse(await cmd(t, false, "SESSION.VALIDATE", t));
      if (data.user_id !== user) throw new Error(`VALIDATE ${t}: ${JSON.stringify(data)}`);
    }
    const listed = await cmd(user, false, "SESSION.LIST", "user_id", user);
    if (listed.length !== 3) throw new Error(`LIST ${user}: ${listed.length}`);
  }
  const first = Object.keys(tokens)[0];
  const rotated = JSON.parse(await cmd(tokens[first][0], false, "SESSION.ROTATE", tokens[first][0]));
  if ((await cmd(rotated.token, true, "SESSION.GET", rotated.token)) === null) throw new Error("rotated");
  for (const user of Object.keys(tokens)) {
    seen.revoked += Number(await cmd(user, false, "SESSION.REVOKEINDEX", "user_id", user));
  }
  for (const ts of Object.values(tokens)) {
    for (const t of ts) {
      if ((await cmd(t, false, "SESSION.VALIDATE", t)) !== null) throw new Error(`still valid: ${t}`);
    }
  }
  console.log(JSON.stringify(seen));
  await cluster.quit();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
