// Two players (and a spectator) play a Connect Four game to the end through the Realtime service
// (namespace /games) with the official socket.io-client, checking what each one sees: acks,
// user-joined, game-updated to the whole room, refusals to the sender only (schema errors with
// their JSON path and rule, Game State's rules), JWT on the handshake.
// Env: RT_URL (http://127.0.0.1:PORT), GAME_ID, TOKEN_A, TOKEN_B, TOKEN_C (a spectator),
//      USER_A, USER_B; --demo prints the game as it goes.
// Prints "realtime-service: N checks passed" and exits 0, or the first failure and exits 1.
'use strict';
const assert = require('node:assert');
const { io } = require('socket.io-client');

const { RT_URL, GAME_ID, TOKEN_A, TOKEN_B, TOKEN_C, USER_A, USER_B } = process.env;
const demo = process.argv.includes('--demo');
let checks = 0;
const check = (cond, what) => { assert.ok(cond, what); checks++; };
const eq = (a, b, what) => { assert.deepStrictEqual(a, b, what); checks++; };
const say = (...a) => { if (demo) console.log(...a); };

function connect(token, transports = ['websocket']) {
  const s = io(RT_URL + '/games', { forceNew: true, transports, reconnection: false, auth: { token } });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), 5000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(t); s.close(); reject(e); });
  });
}
const ack = (s, ev, payload) => s.timeout(8000).emitWithAck(ev, payload);
function record(s) {
  const r = { updated: [], joined: [], errors: [] };
  s.on('game-updated', (u) => r.updated.push(u));
  s.on('user-joined', (u) => r.joined.push(u));
  s.on('error', (e) => r.errors.push(e));
  return r;
}
async function until(pred, what, ms = 5000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out: ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}
function board(state) {
  return state.board.map((row) => row.map((c) => c || '.').join(' ')).join('\n');
}

async function main() {
  // the handshake: no token, a bad token
  for (const bad of [undefined, 'not-a-token']) {
    await assert.rejects(connect(bad), (e) => e.message === 'Authentication error' && typeof e.data.reason === 'string');
    checks++;
  }
  // a valid token that is not a player's (a service's, without the "user" scope)
  if (process.env.TOKEN_SERVICE) {
    await assert.rejects(connect(process.env.TOKEN_SERVICE),
      (e) => e.message === 'Authentication error' && e.data.reason === 'insufficient_scope');
    checks++;
  }
  const a = await connect(TOKEN_A);
  const b = await connect(TOKEN_B, ['polling', 'websocket']); // B starts on long-polling
  const c = await connect(TOKEN_C);
  const ra = record(a), rb = record(b), rc = record(c);
  say(`players: X ${USER_A} (websocket), O ${USER_B} (polling, then upgraded); game ${GAME_ID}`);

  // join: A (the creator) enters the room; B joins the game, which starts it
  let res = await ack(a, 'join-game', { gameId: GAME_ID });
  eq(res.game.status, 'waiting', 'A joins a waiting game');
  res = await ack(b, 'join-game', { gameId: GAME_ID });
  eq(res.game.status, 'active', 'B joining starts the game');
  eq(res.game.players, [USER_A, USER_B], 'both players');
  await until(() => ra.joined.length === 1 && ra.updated.length === 1, 'A hears B join and the start');
  eq(ra.joined[0].userId, USER_B, 'user-joined names B');
  eq(rb.joined.length, 0, 'B does not hear its own join');
  eq(ra.updated[0].state.status, 'active', 'the start reaches the room');
  res = await ack(c, 'join-game', { gameId: GAME_ID });
  eq(res.game.players.length, 2, 'a spectator enters the room without joining the game');
  await until(() => ra.joined.length === 2 && rb.joined.length === 1, 'the room hears the spectator');

  // refusals go to their sender only
  const errsBefore = [ra.errors.length, rc.errors.length];
  res = await ack(a, 'game-move', { gameId: GAME_ID, column: 9 });
  eq(res.error.code, 'VALIDATION_FAILED', 'column 9 fails the schema');
  check(res.error.details.some((d) => d.path === '/column' && d.rule === 'maximum'), 'with its path and rule');
  res = await ack(a, 'game-move', { gameId: GAME_ID, column: 'x', extra: 1 });
  check(res.error.details.length >= 2, 'every violation is listed');
  res = await ack(b, 'game-move', { gameId: GAME_ID, column: 3 });
  eq(res.error.code, 'NOT_YOUR_TURN', 'Game State refuses B moving first');
  res = await ack(a, 'game-move', { gameId: GAME_ID, column: 3, expectedVersion: 1 });
  eq(res.error.code, 'VERSION_CONFLICT', 'a stale version is refused');
  // with Game State's detail, so that the client can catch up (it was dropped: details [])
  check(res.error.details.some((d) => d.path === '/body/expectedVersion' && d.rule === 'currentVersion'),
    `the conflict names the current version: ${JSON.stringify(res.error.details)}`);
  res = await ack(a, 'game-move', { gameId: '00000000-0000-4000-8000-000000000000', column: 3 });
  eq(res.error.code, 'NOT_FOUND', 'an unknown game');
  // Game State's 422s keep their codes (they were UPSTREAM_ERROR: only its 409s were read);
  // `make demo` makes its spectator of player A's token: not a stranger there
  const stranger = process.env.TOKEN_C !== process.env.TOKEN_A && process.env.TOKEN_C !== process.env.TOKEN_B;
  if (stranger) {
    const errsC = rc.errors.length;
    res = await ack(c, 'game-move', { gameId: GAME_ID, column: 3 });
    eq(res.error && res.error.code, 'NOT_A_PLAYER', 'a spectator cannot move');
    await until(() => rc.errors.length === errsC + 1, 'the spectator hears its own refusal');
  }
  await until(() => ra.errors.length === errsBefore[0] + 4 && rb.errors.length === 1, 'the error events');
  eq(rc.errors.length, errsBefore[1] + (stranger ? 1 : 0), 'the spectator saw none of them, only its own');
  eq(ra.errors[0].event, 'game-move', 'an error event names the event');

  // play: X stacks column 0, O column 1; X wins on its fourth disc
  const plan = [[a, 0], [b, 1], [a, 0], [b, 1], [a, 0], [b, 1], [a, 0]];
  let version = res.game ? res.game.version : ra.updated[ra.updated.length - 1].state.version;
  for (let i = 0; i < plan.length; i++) {
    const [who, column] = plan[i];
    const n = [ra.updated.length, rb.updated.length, rc.updated.length];
    res = await ack(who, 'game-move', { gameId: GAME_ID, column, expectedVersion: version });
    check(!res.error, `move ${i + 1} accepted: ${JSON.stringify(res.error)}`);
    eq(res.game.version, version + 1, 'each move adds one to the version');
    version = res.game.version;
    await until(() => ra.updated.length > n[0] && rb.updated.length > n[1] && rc.updated.length > n[2],
      'everyone in the room sees the move');
    for (const r of [ra, rb, rc]) {
      const u = r.updated[r.updated.length - 1];
      eq(u.lastMove.column, column, 'game-updated carries the last move');
      eq(u.state.version, version, 'and the state');
      check(!isNaN(Date.parse(u.timestamp)), 'and a timestamp');
    }
    say(`move ${i + 1}: ${who === a ? 'X' : 'O'} -> column ${column}\n${board(res.game)}\n`);
  }
  eq(res.game.status, 'won', 'four in column 0 wins');
  eq(res.game.winner, USER_A, 'X won');
  say(`X (${USER_A}) won in ${res.game.moves} moves`);
  res = await ack(b, 'game-move', { gameId: GAME_ID, column: 5 });
  eq(res.error.code, 'GAME_NOT_ACTIVE', 'no move after the end');

  // leaving the room stops the updates
  c.emit('leave-game', { gameId: GAME_ID });
  await new Promise((r) => setTimeout(r, 100));
  a.close(); b.close(); c.close();
  console.log(`realtime-service: ${checks} checks passed`);
}

main().then(() => process.exit(0), (e) => {
  console.error('realtime-service: FAILED after ' + checks + ' checks: ' + (e && e.stack || e));
  process.exit(1);
});
