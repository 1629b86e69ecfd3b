// Types of `require('chathub')` (hub.js). The native half's generated
// types are in index.d.ts.

import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

/** Options of a hub; every one is optional, times are in milliseconds. */
export interface HubOptions {
  /** Namespaces the chat runs on. Default `['/', '/chat']`. */
  namespaces?: string[];
  /** Namespaces the host owns: plain Socket.IO, every event to `onEvent`, sockets in any rooms. Default none. */
  hostNamespaces?: string[];
  /** Engine.IO ping interval. Default 25000. */
  pingInterval?: number;
  /** Engine.IO ping timeout. Default 20000. */
  pingTimeout?: number;
  /** Time to join a namespace after the handshake. Default 45000. */
  connectTimeout?: number;
  /** Largest packet in bytes (socket.io's `maxHttpBufferSize`). Default 1000000. */
  maxPayload?: number;
  /** Packets queued per socket before drops. Default 4096. */
  socketBuffer?: number;
  /** A connection whose client reads nothing this long is cut. Default 10000. */
  slowConsumerTimeout?: number;
  /** Flood limits per socket (0: off): events per second (default 100) and burst (200). */
  eventsPerSec?: number;
  eventBurst?: number;
  /** Bytes per second (default 1000000) and burst (2000000). */
  bytesPerSec?: number;
  byteBurst?: number;
  /** Dropped events in a row before a disconnect (default 50; 0: never). */
  floodStrikes?: number;
  /** No effect any more (a socket's events wait in its connection). */
  maxQueuedEvents?: number;
  /** Connections at once per client address (default 256; 0: no limit). */
  maxConnectionsPerIp?: number;
  /** Aggregate limits per client address (0: off): events per second (default 500) and burst (1000). */
  ipEventsPerSec?: number;
  ipEventBurst?: number;
  /** Bytes per second per address (default 5000000) and burst (10000000). */
  ipBytesPerSec?: number;
  ipByteBurst?: number;
  /** Proxies (IP addresses) whose `X-Forwarded-For` names the client. Default none. */
  trustedProxies?: string[];
  /** Time for a request's head and a long-polling body to arrive. Default 30000. */
  requestTimeout?: number;
  /** Longest name, in characters. Default 64. */
  maxNameLength?: number;
  /** Longest room name, in characters. Default 64. */
  maxRoomLength?: number;
  /** Longest chat message, in characters. Default 10000. */
  maxMessageLength?: number;
  /** Origins allowed besides the page's own, for polling and WebSocket (`'*'`: any). Default: none. */
  corsOrigins?: string[];
  /** Serve the chat page at `/` (for `listen`). Default false. */
  servePage?: boolean;
  /** A file to serve at `/` instead of the built-in page. */
  pagePath?: string;
  /** `socket.io-client/dist`, for `/socket.io/socket.io.js`. Default: resolved from `socket.io-client`. */
  clientDist?: string;
  /** A Redis URL: every hub on the same Redis (and prefix) acts as one. Default: none (alone, in memory). */
  redisUrl?: string;
  /**
   * A PEM file of the CA certificates a `rediss://` Redis must chain to,
   * instead of the system's roots (a Redis with a private CA).
   */
  redisTlsCa?: string;
  /**
   * Whether `redisUrl` is a node of a Redis Cluster (Redis 7+): rooms then
   * go over sharded pub/sub, each on the shard of its hash slot. Default false.
   */
  redisCluster?: boolean;
  /** The Redis channel prefix. Default `chathub`. */
  redisPrefix?: string;
  /**
   * How long a busy hub gathers what it sends to Redis into one pipeline
   * (ms; the first line after a quiet spell goes at once). Default 50; 0: none.
   */
  redisBatch?: number;
  /** Threads of the hub's runtime. Default: one per CPU. */
  workerThreads?: number;
  /** Events queued for the listeners before drops. Default 10000. */
  eventQueueCapacity?: number;
  /** Time a `use`/`useLogin` hook may take; past it the hub refuses. Default 10000. */
  hookTimeout?: number;
  /** Upper bound of `close()`. Default 5000. */
  shutdownTimeout?: number;
  /**
   * Connection state recovery on the chat's namespaces (socket.io-client
   * 4.6+): a client whose transport dropped and that comes back within
   * `maxDisconnectionDuration` keeps its id, name and room and gets every
   * line it missed. Every event sent without an ack then carries an offset
   * as its last argument. Default false (as in socket.io).
   */
  recovery?: boolean;
  /** Recovery on the host's namespaces (rooms restored). Default false. */
  hostRecovery?: boolean;
  /** How long a dropped client may take to come back, in ms. Default 120000. */
  maxDisconnectionDuration?: number;
  /** Most broadcasts kept per namespace for recovery. Default 10000. */
  recoveryMaxPackets?: number;
  /** Most bytes of broadcasts kept per namespace for recovery. Default 16 MiB. */
  recoveryMaxBytes?: number;
  /** Most dropped sockets kept per namespace for recovery. Default 100000. */
  recoveryMaxSessions?: number;
  /**
   * A path on the attached server (`/metrics`) where `GET` answers the
   * hub's figures as Prometheus text. Default: none.
   */
  metricsPath?: string;
  /**
   * An address of its own (`127.0.0.1:9100`; port 0: any free port, see
   * `metricsAddress`) where `GET /metrics` (or `metricsPath`) answers the
   * same text. Default: none.
   */
  metricsBind?: string;
  /** The Socket.IO path; only `'/socket.io'` is supported. */
  path?: '/socket.io';
}

/** Event arguments: JSON values and Buffers, nested as you like. */
export type Arg = null | boolean | number | string | Buffer | Arg[] | { [key: string]: Arg };

/** A socket connected and passed the connect hook. */
export interface ConnectEvent {
  ns: string;
  sid: string;
  /** The handshake `auth` payload (`{}` when none). */
  auth: Arg;
  /** `ip:port` of the peer, when known. */
  address: string | null;
  transport: 'polling' | 'websocket';
  /** It came back with connection state recovery (same id; name, room and missed lines kept). */
  recovered: boolean;
}

/** A socket logged in (or renamed). */
export interface LoginEvent {
  ns: string;
  sid: string;
  name: string;
  previous: string | null;
  /** Its room (null: the lobby). */
  room: string | null;
}

/** A socket changed room (`to` null: back to the lobby). */
export interface JoinEvent {
  ns: string;
  sid: string;
  name: string | null;
  from: string | null;
  to: string | null;
  /** Moved by the host rather than by its own `join`. */
  byHost: boolean;
}

/** A chat message that was delivered. */
export interface MessageEvent {
  ns: string;
  sid: string;
  name: string | null;
  room: string | null;
  text: string;
}

/** An event outside the chat protocol. */
export interface CustomEvent {
  ns: string;
  sid: string;
  name: string | null;
  event: string;
  args: Arg[];
  /**
   * Present when the client asked for an acknowledgement: answers it; true
   * the first time, false after (the first answer is the one sent).
   */
  ack?: (...args: Arg[]) => boolean;
}

/** Chat input the hub refused (the client got an `Error:` line). */
export interface RejectedEvent {
  ns: string;
  sid: string;
  event: string;
  error: string;
}

/** A socket left its namespace. */
export interface DisconnectEvent {
  ns: string;
  sid: string;
  name: string | null;
  room: string | null;
  /** Socket.IO's reason: `client namespace disconnect`, `transport close`, … */
  reason: string;
}

/** The link to the other hubs (Redis) went down (`up: false`) or came back. */
export interface ClusterEvent {
  node: string;
  up: boolean;
  detail: string;
}

/** A socket went over a limit. */
export interface LimitEvent {
  ns: string;
  sid: string;
  name: string | null;
  /** `events per second`, `bytes per second`, `queued events`, `slow consumer`. */
  limit: string;
  /** Whether the socket was disconnected for it (else its events were dropped). */
  disconnected: boolean;
}

/**
 * Who is where, on this hub and every hub of the cluster: a socket of a
 * chat namespace joined or left a room or the lobby, or took a name. A hub
 * that stops answering has its members leave within 3 s.
 */
export interface PresenceEvent {
  ns: string;
  sid: string;
  name: string | null;
  /** The room, `null` for the lobby. */
  room: string | null;
  change: 'joined' | 'left' | 'renamed';
  /** The socket's hub (its node id in the cluster), `null` without Redis. */
  hub: string | null;
}

/** The hub's counters. */
export interface HubStats {
  sockets: number;
  packets_dropped: number;
  events_dropped: number;
  flood_disconnects: number;
  slow_consumer_disconnects: number;
  connections_refused: number;
  cluster_messages_lost: number;
  tasks: number;
  /** Sockets that came back with connection state recovery. */
  recovered: number;
  /** Clients that asked to recover and started fresh. */
  recovery_misses: number;
  /** Broadcasts, their bytes, and dropped sockets kept for recovery now. */
  recovery_packets: number;
  recovery_bytes: number;
  recovery_sessions: number;
  /** Engine.IO connections open now, by transport. */
  connections_polling: number;
  connections_websocket: number;
  /** Socket.IO packets received; of them, events. */
  packets_received: number;
  events_received: number;
  /** Packets queued for clients (one per socket a broadcast reached, plus direct ones). */
  packets_sent: number;
  /** Broadcasts delivered on this hub. */
  broadcasts: number;
  /** Bytes read from and written to clients. */
  bytes_received: number;
  bytes_sent: number;
  /** Connections cut for a packet over `maxPayload`. */
  payload_disconnects: number;
  /** Requests refused for their `Origin`. */
  origin_refusals: number;
  /** Commands sent to Redis; pub/sub messages received from it. */
  cluster_published: number;
  cluster_received: number;
  /** How long Redis has been away, in ms (0 while up or without Redis). */
  cluster_down_ms: number;
}

/** Hub events by name. */
export interface HubEvents {
  connect: ConnectEvent;
  connection: ConnectEvent;
  login: LoginEvent;
  join: JoinEvent;
  message: MessageEvent;
  event: CustomEvent;
  rejected: RejectedEvent;
  disconnect: DisconnectEvent;
  cluster: ClusterEvent;
  limit: LimitEvent;
  presence: PresenceEvent;
}

/** What a connect hook sees. */
export interface ConnectRequest {
  ns: string;
  sid: string;
  auth: Arg;
  /** The client's address (a trusted proxy's `X-Forwarded-For` client). */
  address: string | null;
  /** The headers of the request that opened the connection, by lower-case name (cookies included). */
  headers: Record<string, string>;
}

/** What a login hook sees. */
export interface LoginRequest {
  ns: string;
  sid: string;
  name: string;
  current: string | null;
}

/**
 * A hook's answer: `true` or nothing accepts; `false` or a string (the
 * reason) refuses; a thrown error refuses with its message.
 */
export type HookAnswer = boolean | string | void;

/** A room of a listing. */
export interface RoomInfo {
  name: string;
  /** `hub`: the member's hub (its node id in the cluster), absent without Redis. */
  members: { sid: string; name: string | null; hub?: string }[];
}

/** Who is where in a namespace. */
export interface NamespaceListing {
  ns: string;
  lobby: { sid: string; name: string | null; hub?: string }[];
  rooms: RoomInfo[];
}

/** Events and their listeners' signatures, as socket.io types them. */
export interface EventsMap {
  [event: string]: any;
}

/** Any event with any arguments (the default). */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

/** The event names of a map. */
export type EventNames<Map extends EventsMap> = keyof Map & string;

/** What a socket's connect brought (socket.io's `socket.handshake`). */
export interface Handshake {
  /** The client's `auth` payload (`{}` without one). */
  auth: { [key: string]: Arg };
  /** The client's address and port, when known. */
  address: string | null;
  /** The request's headers, by lower-case name. */
  headers: { [name: string]: string };
  /** When it connected, as `Date.toString()`. */
  time: string;
  /** When it connected, in milliseconds since the epoch. */
  issued: number;
}

/**
 * Emits to rooms but some sockets or rooms (socket.io's BroadcastOperator):
 * `hub.to('a').to(['b', 'c']).except('d').emit(…)`, each socket once.
 */
export declare class BroadcastOperator<EmitEvents extends EventsMap = DefaultEventsMap> {
  to(room: string | string[]): BroadcastOperator<EmitEvents>;
  in(room: string | string[]): BroadcastOperator<EmitEvents>;
  /** Leaves out the sockets in these rooms, or these socket ids. */
  except(room: string | string[]): BroadcastOperator<EmitEvents>;
  emit<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: Parameters<EmitEvents[Ev]>): true;
}

/** Callbacks of an ack with a timeout: an error first. */
export interface TimeoutEmitter<EmitEvents extends EventsMap> {
  emit<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: any[]): true;
  emitWithAck<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: any[]): Promise<any>;
}

/**
 * A socket, as `connection` listeners get it (socket.io's server Socket).
 * `ListenEvents`: what its client sends; `EmitEvents`: what the server
 * sends; `SocketData`: the type of `data`.
 */
export declare class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  readonly id: string;
  /** The namespace's name. */
  readonly ns: string;
  readonly nsp: Namespace<ListenEvents, EmitEvents, SocketData>;
  readonly handshake: Handshake;
  /** Anything the application keeps for this socket. */
  data: SocketData;
  /** It came back with connection state recovery. */
  readonly recovered: boolean;
  readonly connected: boolean;
  /** Its chat login name (chat namespaces), or null. */
  readonly name: string | null;
  /**
   * The rooms it is in now, as the hub knows them: its own id, then its
   * rooms (a chat socket's one room, however it got there; a host socket's
   * every room). A new `Set` each time; empty before it connects (in a
   * middleware) and once it left.
   */
  readonly rooms: Set<string>;
  on(event: 'disconnect' | 'disconnecting', handler: (reason: string) => void): this;
  on<Ev extends EventNames<ListenEvents>>(event: Ev, handler: ListenEvents[Ev]): this;
  once(event: 'disconnect' | 'disconnecting', handler: (reason: string) => void): this;
  once<Ev extends EventNames<ListenEvents>>(event: Ev, handler: ListenEvents[Ev]): this;
  off(event: string, handler?: (...args: any[]) => void): this;
  removeListener(event: string, handler?: (...args: any[]) => void): this;
  removeAllListeners(event?: string): this;
  listenerCount(event: string): number;
  /** Sends to this socket's client; a function last asks for its ack. */
  emit<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: Parameters<EmitEvents[Ev]>): true;
  /** Sends and resolves with the client's answer (waits until it answers or leaves). */
  emitWithAck<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: any[]): Promise<any>;
  /** The next ack waits at most `ms` (rejects with `err.code === 'ETIMEDOUT'`). */
  timeout(ms: number): TimeoutEmitter<EmitEvents>;
  /** Chat namespaces: moves it (one room at a time); host namespaces: one more room. */
  join(room: string | string[]): Promise<void>;
  leave(room: string): Promise<void>;
  /** The sockets in `room` but this one. */
  to(room: string | string[]): BroadcastOperator<EmitEvents>;
  in(room: string | string[]): BroadcastOperator<EmitEvents>;
  /** Every socket of the namespace but this one. */
  readonly broadcast: BroadcastOperator<EmitEvents>;
  /** Its client gets `io server disconnect`. */
  disconnect(): this;
}

/** A socket as `fetchSockets()` lists it, on any hub. */
export interface RemoteSocketInfo<SocketData = any> {
  id: string;
  /** Chat namespaces: its login name, or null. */
  name: string | null;
  /** The rooms it is in (none: the chat's lobby). */
  rooms: string[];
  /** Its hub's node id (with Redis), or null. */
  hub: string | null;
  /** `socket.data` of a socket of this hub handed to a listener; undefined otherwise. */
  data: SocketData | undefined;
}

/** Emits to a room, the lobby, a socket or a namespace. */
export declare class BroadcastTarget {
  /** Sends `event` with `args`. Throws on a reserved or empty event name, or on arguments that cannot be sent. */
  emit(event: string, ...args: Arg[]): true;
}

/** A connected socket. */
export declare class SocketHandle {
  readonly ns: string;
  readonly id: string;
  /** Login name, or null before login. */
  readonly name: string | null;
  emit(event: string, ...args: Arg[]): true;
  join(room: string): Promise<void>;
  leave(room: string): Promise<void>;
  disconnect(): Promise<void>;
}

/** One namespace of the hub (`hub.of(name)`, the same object each time). */
export declare class Namespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  readonly name: string;
  /** Each socket that joins this namespace from now on. */
  on(event: 'connection' | 'connect', listener: (socket: Socket<ListenEvents, EmitEvents, SocketData>) => void): this;
  off(event: 'connection' | 'connect', listener: (socket: Socket<ListenEvents, EmitEvents, SocketData>) => void): this;
  /**
   * Adds a middleware (socket.io's `namespace.use`): runs for each socket
   * connecting to this namespace, after the hub's `use` hooks, in the order
   * added. `next()` passes the socket on; `next(err)` (or a throw) refuses
   * it, stops the chain, and its client gets `connect_error` with
   * `err.message`. The socket is the one `connection` listeners then get
   * (not connected yet: `connected` is false, `rooms` empty).
   */
  use(fn: (socket: Socket<ListenEvents, EmitEvents, SocketData>, next: (err?: Error) => void) => void): this;
  to(room: string | string[]): BroadcastOperator<EmitEvents>;
  in(room: string | string[]): BroadcastOperator<EmitEvents>;
  except(room: string | string[]): BroadcastOperator<EmitEvents>;
  lobby(): BroadcastTarget;
  socket(id: string): SocketHandle;
  emit<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: Parameters<EmitEvents[Ev]>): true;
  /** Every socket of the namespace, on every hub. */
  fetchSockets(): Promise<RemoteSocketInfo<SocketData>[]>;
  /** Moves a socket into `room`; resolves once done; rejects for an unknown socket or a bad room. */
  join(id: string, room: string): Promise<void>;
  /** Takes a socket out of `room` (no-op if not in it). */
  leave(id: string, room: string): Promise<void>;
  disconnect(id: string): Promise<void>;
  rooms(): Promise<NamespaceListing>;
}

/**
 * The chapter's chat, run in Rust, for a Node HTTP server:
 *
 * ```js
 * const { Hub } = require('chathub');
 * const hub = new Hub();
 * hub.attach(server);                     // like require('socket.io')(server)
 * hub.on('login', (e) => console.log(e.name, 'logged in'));
 * hub.to('room1').emit('serverMessage', 'hello');
 * await hub.close();
 * ```
 */
export declare class Hub<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  constructor(options?: HubOptions);
  readonly namespaces: string[];
  /** Sockets connected to this hub now. */
  readonly socketCount: number;
  /** This hub's node id in its Redis cluster, or null without Redis. */
  readonly clusterNode: string | null;
  /** The folder `/socket.io/socket.io.js` is served from, or null when none was found at start (it then answers 404). */
  readonly clientBundle: string | null;
  /** The hub's counters: what it serves, refused or lost. */
  readonly stats: HubStats;
  /** The same figures as Prometheus text (what `metricsPath` answers). */
  readonly metricsText: string;
  /** Where `metricsBind`'s listener listens (`IP:PORT`), or null. */
  readonly metricsAddress: string | null;

  /** Listens to hub events; only events with a listener leave Rust. */
  on<K extends keyof HubEvents>(name: K, listener: (event: HubEvents[K]) => void): this;
  addListener<K extends keyof HubEvents>(name: K, listener: (event: HubEvents[K]) => void): this;
  once<K extends keyof HubEvents>(name: K, listener: (event: HubEvents[K]) => void): this;
  off<K extends keyof HubEvents>(name: K, listener: (event: HubEvents[K]) => void): this;
  removeListener<K extends keyof HubEvents>(name: K, listener: (event: HubEvents[K]) => void): this;
  listenerCount(name: keyof HubEvents): number;

  /** Handles a client event outside the chat: `handler(socket, ...args[, ack])`. */
  onEvent(event: string, handler: (socket: SocketHandle, ...args: any[]) => void): this;
  offEvent(event: string, handler: (socket: SocketHandle, ...args: any[]) => void): this;

  /** Adds a connect hook (async allowed); hooks run in the order added and the first refusal stops them; `null` removes them all. */
  use(hook: ((req: ConnectRequest) => HookAnswer | Promise<HookAnswer>) | null): this;
  /** Adds a login hook, chained as `use`; `null` removes them all. */
  useLogin(hook: ((req: LoginRequest) => HookAnswer | Promise<HookAnswer>) | null): this;

  of(ns: string): Namespace<ListenEvents, EmitEvents, SocketData>;
  to(room: string | string[]): BroadcastOperator<EmitEvents>;
  in(room: string | string[]): BroadcastOperator<EmitEvents>;
  except(room: string | string[]): BroadcastOperator<EmitEvents>;
  lobby(): BroadcastTarget;
  /** Sends to every socket of the main namespace `/`. */
  emit<Ev extends EventNames<EmitEvents>>(event: Ev, ...args: Parameters<EmitEvents[Ev]>): true;
  fetchSockets(): Promise<RemoteSocketInfo<SocketData>[]>;

  /** Serves Socket.IO on an existing server's port (`/socket.io/`); the rest stays the server's. Throws if that server is attached already. */
  attach(server: HttpServer | HttpsServer): this;
  /**
   * Listens on a port of the hub's own; resolves with the port. Keeps the
   * process alive until `close()`, as a listening server does. A busy port
   * rejects with `err.code` `'EADDRINUSE'` (`'EACCES'`, …).
   */
  listen(port?: number, host?: string): Promise<number>;
  /** Stops gracefully and closes the servers it was attached to (as socket.io's `io.close()`); resolves once stopped; safe to call twice. */
  close(): Promise<void>;
}

/**
 * What the hub refuses, thrown or rejected: `code` is the core's
 * (`ERR_INVALID_EVENT_NAME`, `ERR_INVALID_ROOM`, `ERR_UNKNOWN_NAMESPACE`,
 * `ERR_SOCKET_NOT_FOUND`, `ERR_INVALID_TARGET`, `ERR_DELIVERY`,
 * `ETIMEDOUT`, `ERR_HUB_CLOSED`) or Node's (`EADDRINUSE`, `EACCES`,
 * `EADDRNOTAVAIL`).
 */
export declare class HubError extends Error {
  readonly code: string;
}

/** One line of the hub's logs. */
export interface LogLine {
  level: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Where it comes from, e.g. `chathub::cluster`. */
  target: string;
  /** The text, then its fields as `key=value`. */
  message: string;
}

/**
 * Sends the hub's logs (every hub of this process) to `listener`, or to
 * standard error without one. `filter` as `RUST_LOG` (default: `RUST_LOG`,
 * else `'info'`). Once per process.
 */
export declare function logTo(
  listener?: ((line: LogLine) => void) | null,
  filter?: string | null,
  options?: { format?: 'plain' | 'json' },
): void;

/** Encodes arguments as the native side takes them: JSON with placeholders, and the Buffers. */
export declare function encode(args: Arg[]): [string, Buffer[]];
/** Puts Buffers back in place of placeholders. */
export declare function reconstruct<T>(value: T, buffers: Buffer[]): T;
