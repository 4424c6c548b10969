// A spectator loses its link in the middle of a game on a Realtime service with connection state
// recovery (TB_RT_RECOVERY_MS), while the two players make moves; when it comes back it is
// recovered (same id, still in the game's room) and gets the game-updated events it missed, in
// order. Env: RT_URL, GAME_ID, TOKEN_A, TOKEN_B, TOKEN_C (the spectator).
// Prints "realtime-service: ..." and exits 0, or the failure and exits 1.
'use strict';
const assert = require('node:assert');
const { io } = require('socket.io-client');

const { RT_URL, GAME_ID, TOKEN_A, TOKEN_B, TOKEN_C } = process.env;

function connect(token, opts = {}) {
  const s = io(RT_URL + '/games', {
    forceNew: true, transports: ['websocket'], reconnection: false, auth: { token }, ...opts,
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), 5000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(t); s.close(); reject(e); });
  });
}
const ack = (s, ev, payload) => s.timeout(8000).emitWithAck(ev, payload);
const once = (s, ev) => new Promise((resolve) => s.once(ev, (...a) => resolve(a)));
async function until(pred, what, ms = 5000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out: ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

(async () => {
  const a = await connect(TOKEN_A);
  const b = await connect(TOKEN_B);
  const c = await connect(TOKEN_C, { reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 500 });
  let v0 = 0;
  for (const s of [a, b, c]) {
    const r = await ack(s, 'join-game', { gameId: GAME_ID });
    assert.ok(r && r.game, `join-game: ${JSON.stringify(r)}`);
    v0 = r.game.version;
  }
  const seen = [];
  c.on('game-updated', (u) => seen.push(u));
  const id = c.id;
  const gone = once(c, 'disconnect');
  c.io.engine.close(); // the spectator's link drops
  await gone;
  let version = (await ack(a, 'join-game', { gameId: GAME_ID })).game.version;
  const moves = [[a, 3], [b, 4], [a, 3]];
  for (const [s, column] of moves) {
    const r = await ack(s, 'game-move', { gameId: GAME_ID, column, expectedVersion: version });
    assert.ok(r && r.game, `game-move: ${JSON.stringify(r)}`);
    version = r.game.version;
  }
  await once(c, 'connect');
  assert.strictEqual(c.recovered, true, 'the spectator is recovered');
  assert.strictEqual(c.id, id, 'with the same id');
  // the game.started relay (version <= v0) may come before or after the drop; the moves come after
  const missed = () => seen.filter((u) => u.state.version > v0);
  await until(() => missed().length >= moves.length, `${moves.length} missed game-updated`);
  await new Promise((r) => setTimeout(r, 200)); // nothing more (each version once)
  const versions = seen.map((u) => u.state.version);
  assert.strictEqual(new Set(versions).size, versions.length, `each version once: ${versions}`);
  assert.deepStrictEqual(missed().map((u) => u.lastMove && u.lastMove.column), moves.map(([, col]) => col), 'the missed moves, in order');
  // still in the room: the next move reaches it live
  const r = await ack(b, 'game-move', { gameId: GAME_ID, column: 0, expectedVersion: version });
  assert.ok(r && r.game, `game-move: ${JSON.stringify(r)}`);
  await until(() => missed().length === moves.length + 1, 'a live game-updated after the recovery');
  console.log(`realtime-service: a spectator that lost its link was recovered (same id) with the ${moves.length} moves it missed, in order, then the next one live`);
  for (const s of [a, b, c]) s.close();
  process.exit(0);
})().catch((e) => { console.log(`recovering spectator: ${e.stack || e}`); process.exit(1); });
