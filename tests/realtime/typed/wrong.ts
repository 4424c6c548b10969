// Misuses the generated event maps: each line marked "expect:" must be refused by tsc
// (tests/realtime/typescript.sh checks every marked line fails, with that code, and no other).
import { io, Socket } from "socket.io-client";
import { GamesClientToServerEvents, GamesServerToClientEvents } from "../../../gen/realtime/realtime";

const socket: Socket<GamesServerToClientEvents, GamesClientToServerEvents> = io("http://127.0.0.1:3000/games");

socket.emit("game-move", { gameId: "g", column: "3" }, () => {}); // expect: TS2322
socket.emit("join-game", { game: "g" }, () => {}); // expect: TS2353
socket.emit("no-such-event", {}); // expect: TS2345
socket.on("game-updated", (u) => { const s: number = u.state.status; console.log(s); }); // expect: TS2322
socket.emit("leave-game"); // expect: TS2554
