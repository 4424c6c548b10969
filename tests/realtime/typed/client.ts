// A socket.io-client user typed with the generated event maps (gen/realtime/realtime.ts):
// `tsc --noEmit` must accept it (tests/realtime/typescript.sh).
import { io, Socket } from "socket.io-client";
import {
  GamesClientToServerEvents,
  GamesGameAck,
  GamesNamespace,
  GamesRealtimeError,
  GamesServerToClientEvents,
} from "../../../gen/realtime/realtime";

const socket: Socket<GamesServerToClientEvents, GamesClientToServerEvents> = io(
  "http://127.0.0.1:3000" + GamesNamespace,
  { auth: { token: "..." } },
);

socket.on("game-updated", (u) => {
  const column: number | undefined = u.lastMove?.column;
  const status: "waiting" | "active" | "won" | "draw" = u.state.status;
  const cell: "X" | "O" | null = u.state.board[5][column ?? 0];
  console.log(u.gameId, u.timestamp, status, cell, u.state.version);
});
socket.on("user-joined", (j) => console.log(j.userId, j.gameId));
socket.on("error", (e: GamesRealtimeError) => {
  for (const d of e.details) console.log(e.code, e.event, d.path, d.rule, d.message);
});

socket.emit("join-game", { gameId: "1b4e28ba-2fa1-11d2-883f-0016d3cca427" }, (res) => {
  if ("error" in res) console.log(res.error.code);
  else {
    const ack: GamesGameAck = res;
    console.log(ack.game.players.length, ack.game.turn);
  }
});
socket.emit("game-move", { gameId: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", column: 3, expectedVersion: 2 },
  (res) => console.log("error" in res ? res.error.message : res.game.moves));
socket.emit("leave-game", { gameId: "1b4e28ba-2fa1-11d2-883f-0016d3cca427" });
