// Compiled with `tsc --strict --noEmit` by test/types.test.js: socket.io's
// typed-events pattern works against chathub's types, and misuse does not
// compile (the @ts-expect-error lines must be errors).
import * as http from 'node:http';
import { Hub, Socket } from '../../hub';

interface ClientToServer {
  move: (x: number, ack: (ok: boolean) => void) => void;
  'my event': (content: string) => void;
}
interface ServerToClient {
  note: (text: string) => void;
  question: (q: string, answer: (a: string) => void) => void;
}
interface Data {
  score: number;
}

const server = http.createServer();
const hub = new Hub<ClientToServer, ServerToClient, Data>({ hostNamespaces: ['/game'] });
hub.attach(server);
hub.of('/game').on('connection', (socket: Socket<ClientToServer, ServerToClient, Data>) => {
  socket.data.score = 1;
  socket.on('move', (x, ack) => ack(x > 0));
  socket.on('disconnect', (reason) => reason.toUpperCase());
  socket.emit('note', 'hi');
  socket.to(['a', 'b']).emit('note', 'there');
  socket.broadcast.emit('note', 'all');
  void socket.join(['a', 'b']);
  void socket.timeout(1000).emitWithAck('question', 'why');
  // @ts-expect-error: a number is not a string
  socket.emit('note', 3);
  // @ts-expect-error: no such event
  socket.emit('nope', 'x');
  // @ts-expect-error: the handler's parameter is a number
  socket.on('move', (x: string) => x);
});
hub.of('/game').use((socket, next) => {
  socket.data.score = socket.handshake.auth.token ? 1 : 0;
  if (socket.rooms.has('banned')) next(new Error('banned'));
  else next();
});
// @ts-expect-error: next takes an Error, not a number
hub.of('/game').use((socket, next) => next(3));
hub.to('r').except('s').emit('note', 'x');
void hub.fetchSockets().then((all) => all.map((s) => s.data?.score ?? 0));
// Untyped, as before: any event, any arguments.
const plain = new Hub();
plain.of('/chat').on('connection', (s) => s.emit('anything', 1, { a: [2] }));
