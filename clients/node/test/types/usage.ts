// Uses the package the way a TypeScript application does, with the real client types:
// `tsc -p test/types` (test/types.test.js) must accept it, and refuse each line that is
// marked as expected to be an error, so that index.d.ts follows index.js both ways.
import * as sessions from '../..';
import { init, getService, sessionId, keySlot, SessionService, CreatedSession, ListedSession } from '../..';
import Redis, { Cluster } from 'ioredis';
import { createClient, createCluster } from 'redis';

interface User {
  user_id: number;
  foo: string;
}

export async function usage(): Promise<void> {
  const client = createClient({ url: 'redis://127.0.0.1:6379' });
  await client.connect();
  const svc: SessionService = init({ redis_client: client, token_TTL: 7200, token_bytes_length: 24 });
  init({ redis_client: new Redis(6379, '127.0.0.1') });
  init({ redis_client: new Cluster([{ host: '127.0.0.1', port: 7000 }]) });
  init({ redis_client: createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] }) });
  init({ redis_client: { send_command(_name: string, _args: any[], cb: (e: Error | null, r: any) => void) { cb(null, null); } } });

  const session: CreatedSession<User> = await svc.create({ user_id: 150, foo: 'bar' });
  const token: string = session.token;
  const created: string = session.createdAt;
  const id: number = session.user_id;
  await svc.create({ user_id: 150 }, { maxSessions: 3, deny: true });
  svc.create({ user_id: 150 }, (err, s) => {
    if (err === null) console.log(s.token);
  });

  const data = await svc.validate<User>(token);
  if (data !== null) {
    const n: number = data.user_id;
    console.log(n, data.createdAt);
  }
  await svc.get(token);
  await svc.update(token, { foo: null });
  const rotated = await svc.rotate(token, 30);
  if (rotated !== null) console.log(rotated.token);
  await svc.rotate(token);
  const ended: boolean = await svc.destroy(token);
  const count: number = await svc.revokeIndex('user_id', 150, token);
  await svc.revokeIndex('user_id', '150');
  const listed: ListedSession[] = await svc.list('user_id', 150);
  for (const s of listed) {
    const sid: string = s.sessionId;
    const maybe: string | undefined = s.token;
    console.log(sid, maybe, await svc.revokeId('user_id', 150, s.sessionId));
  }
  const indexes: string[] = await svc.addIndex('tenant_id');
  await svc.removeIndex('tenant_id');
  await svc.getIndexes();
  const again: SessionService | null = getService();
  const slot: number = keySlot('user_id:{150}');
  console.log(created, id, ended, count, indexes, again, slot, sessionId(token), sessions.sessionId(token));

  // @ts-expect-error data is an object
  await svc.create('user 150');
  // @ts-expect-error maxSessions is a number
  await svc.create({ user_id: 1 }, { maxSessions: '3' });
  // @ts-expect-error an index value is a string, number or boolean
  await svc.list('user_id', { id: 150 });
  // @ts-expect-error destroy resolves a boolean
  const wrong: number = await svc.destroy(token);
  // @ts-expect-error a redis_client is needed
  init({ token_TTL: 60 });
  // @ts-expect-error not a Redis client
  init({ redis_client: 'localhost:6379' });
  // @ts-expect-error validate may resolve null
  const notNull: { createdAt: string } = await svc.validate(token);
  // @ts-expect-error the grace period is a number of seconds
  await svc.rotate(token, '30');
  // @ts-expect-error revokeId needs the identifier
  await svc.revokeId('user_id', 150);
  console.log(wrong, notNull);
}
