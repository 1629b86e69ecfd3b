'use strict';
// chathub for Node.js: an existing HTTP server hands its Socket.IO chat
// traffic (/socket.io/, same port) to chathub's Rust hub.
//
//   const { Hub } = require('chathub');
//   const hub = new Hub();
//   hub.attach(server);
//
// This file gives the native hub (index.js, built from src/lib.rs) the
// shape socket.io users know. It holds no chat rule: the chat runs in Rust.
// WebSocket connections are handed to Rust whole (their file descriptor);
// long-polling requests cross as whole requests; TLS connections, whose
// bytes only Node can decrypt, cross through a byte pump.

const path = require('node:path');
const native = require('./native.js');

const KINDS = native.eventKinds();
/** Event names a listener may use with `hub.on`, and the native kind each means. */
const EVENT_NAMES = {
  connect: 'connect',
  connection: 'connect',
  login: 'login',
  join: 'join',
  message: 'message',
  event: 'event',
  rejected: 'rejected',
  disconnect: 'disconnect',
  cluster: 'cluster',
  limit: 'limit',
  presence: 'presence',
};
const MAX_DEPTH = 64;
const NO_BUFFERS = Object.freeze([]);

// ---------------------------------------------------------------------------
// Arguments: JSON with Socket.IO placeholders + Buffers.

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function deconstruct(value, buffers, depth) {
  if (depth > MAX_DEPTH) {
    throw new TypeError(`arguments are nested deeper than ${MAX_DEPTH} levels (or circular)`);
  }
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') throw new TypeError('a BigInt cannot be sent');
    if (typeof value === 'function' || typeof value === 'symbol') {
      throw new TypeError(`a ${typeof value} cannot be sent`);
    }
    return value;
  }
  if (isBinary(value)) {
    buffers.push(toBuffer(value));
    return { _placeholder: true, num: buffers.length - 1 };
  }
  if (typeof value.toJSON === 'function') return deconstruct(value.toJSON(), buffers, depth + 1);
  if (Array.isArray(value)) return value.map((v) => deconstruct(v, buffers, depth + 1));
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined && typeof v !== 'function') out[k] = deconstruct(v, buffers, depth + 1);
  }
  return out;
}

/** Encodes event arguments for the native side: [json, buffers]. */
function encode(args) {
  const buffers = [];
  const json = JSON.stringify(args.map((a) => deconstruct(a, buffers, 0)));
  return [json, buffers];
}

/** Puts the Buffers back where the placeholders are. */
function reconstruct(value, buffers) {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => reconstruct(v, buffers));
  if (value._placeholder === true && typeof value.num === 'number' && Object.keys(value).length === 2) {
    return buffers[value.num];
  }
  for (const k of Object.keys(value)) value[k] = reconstruct(value[k], buffers);
  return value;
}

// ---------------------------------------------------------------------------
// Errors: the hub's, with the core's code.

/**
 * An error of the hub: `err.code` is the core's (`ERR_HUB_CLOSED`,
 * `ERR_UNKNOWN_NAMESPACE`, `ERR_SOCKET_NOT_FOUND`, `ERR_INVALID_ROOM`,
 * `ERR_INVALID_EVENT_NAME`, `ERR_DELIVERY`, `ERR_INVALID_TARGET`,
 * `ETIMEDOUT`, …) or Node's (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`).
 */
class HubError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'HubError';
    this.code = code;
  }
}

/** The native error as a `HubError` when it carries a code. */
function hubError(e) {
  const message = String((e && e.message) || e);
  const m = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(message) || /^(E[A-Z]+): ([\s\S]*)$/.exec(message);
  return m ? new HubError(m[2], m[1]) : e;
}

/** The native hub, its errors turned into `HubError`s (thrown or rejected). */
function withCodes(nativeHub) {
  return new Proxy(nativeHub, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      return (...args) => {
        let r;
        try {
          r = v.apply(target, args);
        } catch (e) {
          throw hubError(e);
        }
        return r && typeof r.then === 'function' ? r.catch((e) => { throw hubError(e); }) : r;
      };
    },
  });
}

// ---------------------------------------------------------------------------
// Checks with clear errors.

function checkString(value, what) {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string, got ${describe(value)}`);
  return value;
}

function checkNonEmpty(value, what) {
  checkString(value, what);
  if (value.length === 0) throw new TypeError(`${what} must not be empty`);
  return value;
}

function checkFunction(value, what) {
  if (typeof value !== 'function') throw new TypeError(`${what} must be a function, got ${describe(value)}`);
  return value;
}

/** An event name to send: a string (which names the hub refuses, it says). */
function checkEvent(event) {
  return checkString(event, 'the event name');
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(String(v)).slice(0, 40)}`;
}

const OPTION_TYPES = {
  namespaces: 'strings',
  hostNamespaces: 'strings',
  ipEventsPerSec: 'limit',
  ipEventBurst: 'limit',
  ipBytesPerSec: 'limit',
  ipByteBurst: 'limit',
  trustedProxies: 'strings',
  requestTimeout: 'ms',
  pingInterval: 'ms',
  pingTimeout: 'ms',
  connectTimeout: 'ms',
  maxPayload: 'count',
  socketBuffer: 'count',
  slowConsumerTimeout: 'ms',
  eventsPerSec: 'limit',
  eventBurst: 'limit',
  bytesPerSec: 'limit',
  byteBurst: 'limit',
  floodStrikes: 'limit',
  maxQueuedEvents: 'count',
  maxConnectionsPerIp: 'limit',
  maxNameLength: 'count',
  maxRoomLength: 'count',
  maxMessageLength: 'count',
  corsOrigins: 'strings',
  servePage: 'boolean',
  pagePath: 'string',
  clientDist: 'string',
  redisUrl: 'string',
  redisPrefix: 'string',
  redisBatch: 'msOrZero',
  workerThreads: 'count',
  eventQueueCapacity: 'count',
  hookTimeout: 'ms',
  shutdownTimeout: 'ms',
  recovery: 'boolean',
  hostRecovery: 'boolean',
  maxDisconnectionDuration: 'ms',
  recoveryMaxPackets: 'count',
  recoveryMaxBytes: 'count',
  recoveryMaxSessions: 'count',
  path: 'string',
};

function checkOptions(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    const kind = OPTION_TYPES[key];
    if (kind === undefined) throw new TypeError(`unknown option "${key}"`);
    if (value === undefined) continue;
    if (kind === 'strings') {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        throw new TypeError(`option ${key} must be an array of strings`);
      }
    } else if (kind === 'limit') {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new RangeError(`option ${key} must be an integer >= 0 (0: no limit), got ${describe(value)}`);
      }
    } else if (kind === 'msOrZero') {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new RangeError(`option ${key} must be an integer >= 0 (milliseconds; 0: none), got ${describe(value)}`);
      }
    } else if (kind === 'ms' || kind === 'count') {
      if (!Number.isInteger(value) || value <= 0 || value > 0xffffffff) {
        throw new RangeError(`option ${key} must be a positive integer${kind === 'ms' ? ' (milliseconds)' : ''}, got ${describe(value)}`);
      }
    } else if (typeof value !== kind) {
      throw new TypeError(`option ${key} must be a ${kind}, got ${describe(value)}`);
    }
    out[key] = value;
  }
  return out;
}

function defaultClientDist() {
  try {
    return path.dirname(require.resolve('socket.io-client/dist/socket.io.js'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Targets.

/** Emits to a room, the lobby, a socket or a whole namespace. */
class BroadcastTarget {
  #hub;
  #kind;
  #ns;
  #to;

  constructor(hub, kind, ns, to) {
    this.#hub = hub;
    this.#kind = kind;
    this.#ns = ns;
    this.#to = to;
  }

  /** Sends `event` with `args` (JSON values and Buffers) to the target. */
  emit(event, ...args) {
    checkEvent(event);
    const [json, buffers] = encode(args);
    this.#hub._native().emit(this.#kind, this.#ns, this.#to ?? null, event, json, buffers);
    return true;
  }
}

/** A room or a list of rooms (strings; which rooms are valid, the hub says). */
function roomList(room, what = 'the room') {
  const list = Array.isArray(room) ? room : [room];
  for (const r of list) checkString(r, what);
  return list;
}

/**
 * Emits to rooms of a namespace but some sockets or rooms, as socket.io's
 * `io.to(a).to([b, c]).except(d).emit(…)`: each socket once, whichever of
 * the rooms it is in, on every hub. Immutable: each call gives a new one.
 */
class BroadcastOperator {
  #hub;
  #ns;
  #rooms;
  #except;

  constructor(hub, ns, rooms = [], except = []) {
    this.#hub = hub;
    this.#ns = ns;
    this.#rooms = rooms;
    this.#except = except;
  }

  /** Adds rooms to send to. */
  to(room) {
    return new BroadcastOperator(this.#hub, this.#ns, [...this.#rooms, ...roomList(room)], this.#except);
  }

  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }

  /** Leaves out the sockets in `room` (or rooms), or sockets by id. */
  except(room) {
    return new BroadcastOperator(this.#hub, this.#ns, this.#rooms, [...this.#except, ...roomList(room)]);
  }

  /** Sends `event` with `args` (JSON values and Buffers). */
  emit(event, ...args) {
    checkEvent(event);
    if (typeof args[args.length - 1] === 'function') {
      throw new Error('acknowledgements are not supported when broadcasting');
    }
    const [json, buffers] = encode(args);
    this.#hub._native().emitTo(this.#ns, this.#rooms, this.#except, event, json, buffers);
    return true;
  }
}

/** Lifecycle events of a socket, not sent by its client. */
const SOCKET_LIFECYCLE = new Set(['disconnect', 'disconnecting']);

/**
 * A socket, as socket.io's server gives it to `connection` listeners:
 * `id`, `handshake`, `data`, `on(event, handler)`, `emit`, `emitWithAck`,
 * `join`/`leave`, `to(room)`, `broadcast`, `disconnect()`.
 */
class Socket {
  #hub;
  #handlers = new Map();

  constructor(hub, nsp, id, handshake, recovered) {
    this.#hub = hub;
    /** The namespace (`hub.of(name)`). */
    this.nsp = nsp;
    /** The namespace's name. */
    this.ns = nsp.name;
    /** The socket id (the same after a recovery). */
    this.id = id;
    /** `{ auth, address, headers, time, issued }` of its connect. */
    this.handshake = handshake;
    /** Anything the application keeps for this socket. */
    this.data = {};
    /** Whether it came back with connection state recovery. */
    this.recovered = recovered;
    /** Whether it is still connected. */
    this.connected = true;
    /** Its chat login name, or null (chat namespaces). */
    this.name = null;
  }

  /**
   * Handles an event from this socket's client: `handler(...args, ack?)`
   * (ack last when the client asked for one). `disconnect` gets the reason.
   */
  on(event, handler) {
    checkNonEmpty(event, 'the event name');
    checkFunction(handler, 'the handler');
    if (!this.#handlers.has(event)) this.#handlers.set(event, []);
    this.#handlers.get(event).push(handler);
    return this;
  }

  /** Handles one event, once. */
  once(event, handler) {
    checkFunction(handler, 'the handler');
    const wrapper = (...args) => {
      this.off(event, wrapper);
      return handler(...args);
    };
    return this.on(event, wrapper);
  }

  /** Removes a handler (all of the event's without one). */
  off(event, handler) {
    const list = this.#handlers.get(event);
    if (!list) return this;
    if (handler === undefined) list.length = 0;
    else if (list.includes(handler)) list.splice(list.indexOf(handler), 1);
    if (list.length === 0) this.#handlers.delete(event);
    return this;
  }

  /** Same as `off`. */
  removeListener(event, handler) {
    return this.off(event, handler);
  }

  /** Removes every handler of `event` (of every event without one). */
  removeAllListeners(event) {
    for (const name of event === undefined ? [...this.#handlers.keys()] : [event]) this.off(name);
    return this;
  }

  /** How many handlers `event` has. */
  listenerCount(event) {
    return (this.#handlers.get(event) ?? []).length;
  }

  /**
   * Sends `event` to this socket's client. A function last asks for the
   * client's acknowledgement: it gets the client's answer.
   */
  emit(event, ...args) {
    return this.#emit(event, args, null);
  }

  /** Sends `event` and resolves with the client's answer (first argument). */
  emitWithAck(event, ...args) {
    return this.#ask(event, args, null).then((answer) => answer[0]);
  }

  /**
   * Sets a timeout for the next acknowledgement: `socket.timeout(5000)
   * .emit('q', (err, answer) => …)` or `.emitWithAck('q')` (rejects after
   * the timeout).
   */
  timeout(ms) {
    if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`the timeout must be a positive number of milliseconds, got ${describe(ms)}`);
    return {
      emit: (event, ...args) => this.#emit(event, args, ms),
      emitWithAck: (event, ...args) => this.#ask(event, args, ms).then((answer) => answer[0]),
    };
  }

  #emit(event, args, timeout) {
    checkEvent(event);
    if (typeof args[args.length - 1] !== 'function') {
      if (timeout !== null) throw new TypeError('with a timeout, emit needs a callback last');
      return new BroadcastTarget(this.#hub, 'socket', this.ns, this.id).emit(event, ...args);
    }
    const callback = args.pop();
    this.#ask(event, args, timeout).then(
      (answer) => (timeout === null ? callback(...answer) : callback(null, ...answer)),
      (err) => {
        // socket.io calls back without an error only when no timeout was set.
        if (timeout !== null) callback(err);
      },
    );
    return true;
  }

  #ask(event, args, timeout) {
    checkEvent(event);
    const [json, buffers] = encode(args);
    // Without a timeout, as socket.io: until the answer, or the socket left.
    const ms = timeout ?? 2 ** 31;
    return this.#hub._native()
      .emitWithAck(this.ns, this.id, event, json, buffers, ms)
      .then(({ json: answer, buffers: bins }) => reconstruct(JSON.parse(answer), bins));
  }

  /**
   * Puts the socket in `room` (or each of a list): in a chat namespace it
   * moves there (one room at a time, as the chat says); in a host
   * namespace it joins one more. Resolves once done.
   */
  async join(room) {
    for (const r of roomList(room)) await this.nsp.join(this.id, r);
  }

  /** Takes the socket out of `room`. Resolves once done. */
  leave(room) {
    return this.nsp.leave(this.id, room);
  }

  /** Sends to the sockets in `room` but this one. */
  to(room) {
    return new BroadcastOperator(this.#hub, this.ns, roomList(room), [this.id]);
  }

  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }

  /** Sends to every socket of the namespace but this one. */
  get broadcast() {
    return new BroadcastOperator(this.#hub, this.ns, [], [this.id]);
  }

  /** Disconnects the socket (its client gets `io server disconnect`). */
  disconnect() {
    this.nsp.disconnect(this.id).catch(() => {});
    return this;
  }

  /** @internal An event of the client. */
  _dispatch(event, args, ack) {
    const list = this.#handlers.get(event);
    if (!list) return false;
    for (const handler of [...list]) this.#hub._call(handler, ...args, ...(ack ? [ack] : []));
    return true;
  }

  /** @internal The socket left. */
  _left(reason) {
    this.connected = false;
    for (const name of SOCKET_LIFECYCLE) {
      for (const handler of [...(this.#handlers.get(name) ?? [])]) this.#hub._call(handler, reason);
    }
    this.removeAllListeners();
  }
}

/** A connected socket, as handlers and `Namespace.socket()` give it. */
class SocketHandle {
  #hub;

  constructor(hub, ns, id, name) {
    this.#hub = hub;
    /** The namespace. */
    this.ns = ns;
    /** The socket id. */
    this.id = id;
    /** The login name, or null before login. */
    this.name = name ?? null;
  }

  /** Sends `event` to this socket. */
  emit(event, ...args) {
    return new BroadcastTarget(this.#hub, 'socket', this.ns, this.id).emit(event, ...args);
  }

  /** Moves the socket into `room`. */
  join(room) {
    return this.#hub.of(this.ns).join(this.id, room);
  }

  /** Takes the socket out of `room`, back to the lobby. */
  leave(room) {
    return this.#hub.of(this.ns).leave(this.id, room);
  }

  /** Disconnects the socket. */
  disconnect() {
    return this.#hub.of(this.ns).disconnect(this.id);
  }
}

/** One namespace of the hub (`hub.of('/chat')`). */
class Namespace {
  #hub;
  #connection = [];

  constructor(hub, name) {
    this.#hub = hub;
    /** The namespace path. */
    this.name = name;
  }

  /**
   * `on('connection', socket => …)` (or `'connect'`), as socket.io's
   * namespaces: each socket that joins this namespace from now on, as a
   * `Socket`.
   */
  on(name, listener) {
    if (name !== 'connection' && name !== 'connect') {
      throw new TypeError(`a namespace has no "${name}" event; use "connection"`);
    }
    checkFunction(listener, 'the listener');
    this.#hub._native();
    this.#connection.push(listener);
    this.#hub._updateFilter();
    return this;
  }

  /** Removes a `connection` listener. */
  off(name, listener) {
    const i = this.#connection.indexOf(listener);
    if (i >= 0) this.#connection.splice(i, 1);
    this.#hub._updateFilter();
    return this;
  }

  /** @internal Whether sockets are handed out. */
  get _wantsSockets() {
    return this.#connection.length > 0;
  }

  /** @internal Hands a new socket to the listeners. */
  _connected(socket) {
    for (const listener of [...this.#connection]) this.#hub._call(listener, socket);
  }

  /** The sockets in `room` (or any of a list of rooms). */
  to(room) {
    return new BroadcastOperator(this.#hub, this.name, roomList(room));
  }

  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }

  /** Every socket of the namespace but those in `room` (or by id). */
  except(room) {
    return new BroadcastOperator(this.#hub, this.name, [], roomList(room));
  }

  /**
   * Every socket of the namespace, on every hub: `{ id, name, rooms, hub,
   * data }` (`rooms`: the rooms it is in, none for the chat's lobby;
   * `data`: the `socket.data` of a socket of this hub handed out to a
   * `connection` listener, `undefined` for the others).
   */
  async fetchSockets() {
    const listing = await this.rooms();
    const byId = new Map();
    const add = (m, room) => {
      let s = byId.get(m.sid);
      if (!s) {
        const local = this.#hub._socket(this.name, m.sid);
        s = { id: m.sid, name: m.name ?? null, rooms: [], hub: m.hub ?? null, data: local ? local.data : undefined };
        byId.set(m.sid, s);
      }
      if (room !== null) s.rooms.push(room);
    };
    for (const m of listing.lobby ?? []) add(m, null);
    for (const r of listing.rooms ?? []) for (const m of r.members) add(m, r.name);
    return [...byId.values()];
  }

  /** The sockets in no room. */
  lobby() {
    return new BroadcastTarget(this.#hub, 'lobby', this.name);
  }

  /** One socket, by id. */
  socket(id) {
    return new SocketHandle(this.#hub, this.name, checkNonEmpty(id, 'the socket id'));
  }

  /** Sends `event` to every socket of the namespace. */
  emit(event, ...args) {
    return new BroadcastTarget(this.#hub, 'namespace', this.name).emit(event, ...args);
  }

  /** Moves a socket into `room` (leaving its room); resolves once done. */
  join(id, room) {
    return this.#hub._native().join(this.name, checkNonEmpty(id, 'the socket id'), checkString(room, 'the room'));
  }

  /** Takes a socket out of `room`, back to the lobby; resolves once done. */
  leave(id, room) {
    return this.#hub._native().leave(this.name, checkNonEmpty(id, 'the socket id'), checkString(room, 'the room'));
  }

  /** Disconnects a socket; resolves once done. */
  disconnect(id) {
    return this.#hub._native().disconnect(this.name, checkNonEmpty(id, 'the socket id'));
  }

  /** Who is where: `{ ns, lobby: [{sid, name}], rooms: [{name, members}] }`. */
  async rooms() {
    return JSON.parse(await this.#hub._native().rooms(this.name));
  }
}

// ---------------------------------------------------------------------------
// The hub.

const releaseAcks = new FinalizationRegistry(({ nativeHub, id }) => {
  try {
    nativeHub.releaseAck(id);
  } catch {
    // The hub is gone: so is the ack.
  }
});

/**
 * A chathub hub: the chapter's chat, run in Rust, for a Node HTTP server.
 * Every option is optional; times are in milliseconds.
 */
class Hub {
  #native;
  #listeners = new Map();
  #handlers = new Map();
  #closing = null;
  #path = '/socket.io';
  #maxPayload;
  #requestTimeout;
  #servers = new Set();
  /** Namespace objects, by name (so that their listeners last). */
  #nsps = new Map();
  /** Sockets handed to `connection` listeners, by `ns\0id`. */
  #sockets = new Map();

  constructor(options) {
    const opts = checkOptions(options);
    if (opts.path !== undefined) {
      if (!opts.path.startsWith('/')) throw new TypeError('option path must start with "/"');
      this.#path = opts.path.replace(/\/+$/, '') || '/socket.io';
      delete opts.path;
    }
    if (this.#path !== '/socket.io') {
      throw new RangeError('only the default path "/socket.io" is supported');
    }
    this.#native = withCodes(new native.NativeHub({ clientDist: defaultClientDist(), ...opts }));
    this.#requestTimeout = this.#native.requestTimeoutMs;
    this.#maxPayload = this.#native.maxPayload;
    this.#native.listenEvents((json, buffers, counts, ackIds) => this.#deliverBatch(json, buffers, counts, ackIds));
  }

  /** @internal The native hub, or an Error once closed. */
  _native() {
    if (this.#closing) throw new HubError('the hub is closed', 'ERR_HUB_CLOSED');
    return this.#native;
  }

  /** The namespaces the chat runs on. */
  get namespaces() {
    return this.#native.namespaces;
  }

  /** The namespaces the host owns (plain Socket.IO, no chat rules). */
  get hostNamespaces() {
    return this.#native.hostNamespaces;
  }

  /**
   * The folder `/socket.io/socket.io.js` is served from, or null when no
   * client bundle was found at start (it then answers 404; set
   * `clientDist`).
   */
  get clientBundle() {
    return this.#native.clientBundle;
  }

  /** How many sockets are connected now (to this hub). */
  get socketCount() {
    return this.#native.socketCount;
  }

  /**
   * The hub's counters: `{ sockets, packets_dropped, events_dropped,
   * flood_disconnects, slow_consumer_disconnects, connections_refused,
   * cluster_messages_lost, tasks, recovered, recovery_misses,
   * recovery_packets, recovery_bytes, recovery_sessions }`.
   */
  get stats() {
    return JSON.parse(this.#native.statsJson);
  }

  /** This hub's node id in its Redis cluster, or null without Redis. */
  get clusterNode() {
    return this.#native.clusterNode;
  }

  // --- observe -------------------------------------------------------------

  /**
   * Listens to hub events: `connect` (alias `connection`), `login`, `join`,
   * `message`, `event` (any event outside the chat), `rejected`,
   * `disconnect`, `cluster` (the Redis link went down or came back),
   * `limit` (a socket went over a flood or slow-reader limit). Only
   * events with a listener leave Rust.
   */
  on(name, listener) {
    const kind = EVENT_NAMES[checkString(name, 'the event name')];
    if (kind === undefined) {
      throw new TypeError(`unknown hub event "${name}"; use one of ${Object.keys(EVENT_NAMES).join(', ')}`);
    }
    checkFunction(listener, 'the listener');
    this._native();
    if (!this.#listeners.has(name)) this.#listeners.set(name, []);
    this.#listeners.get(name).push(listener);
    this._updateFilter();
    return this;
  }

  /** Same as `on`. */
  addListener(name, listener) {
    return this.on(name, listener);
  }

  /** Listens once. */
  once(name, listener) {
    checkFunction(listener, 'the listener');
    const wrapper = (...args) => {
      this.off(name, wrapper);
      listener(...args);
    };
    return this.on(name, wrapper);
  }

  /** Removes a listener added with `on`. */
  off(name, listener) {
    const list = this.#listeners.get(name);
    if (list) {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#listeners.delete(name);
      if (!this.#closing) this._updateFilter();
    }
    return this;
  }

  /** Same as `off`. */
  removeListener(name, listener) {
    return this.off(name, listener);
  }

  /** How many listeners `name` has. */
  listenerCount(name) {
    return (this.#listeners.get(name) ?? []).length;
  }

  /**
   * Handles a client event outside the chat, as socket.io's
   * `socket.on(event, handler)`: `handler(socket, ...args)`, with an ack
   * function last when the client asked for one.
   */
  onEvent(event, handler) {
    checkNonEmpty(event, 'the event name');
    checkFunction(handler, 'the handler');
    this._native();
    if (!this.#handlers.has(event)) this.#handlers.set(event, []);
    this.#handlers.get(event).push(handler);
    this._updateFilter();
    return this;
  }

  /** Removes a handler added with `onEvent`. */
  offEvent(event, handler) {
    const list = this.#handlers.get(event);
    if (list) {
      const i = list.indexOf(handler);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#handlers.delete(event);
      if (!this.#closing) this._updateFilter();
    }
    return this;
  }

  /** @internal Tells Rust which events to send over (only those). */
  _updateFilter() {
    if (this.#closing) return;
    let kinds = 0;
    for (const name of this.#listeners.keys()) kinds |= KINDS[EVENT_NAMES[name]];
    const sockets = [...this.#nsps.values()].some((n) => n._wantsSockets) || this.#sockets.size > 0;
    if (sockets) {
      // Socket objects: their connects, names and leaves, and every event
      // of their clients. Not only the names handled so far: a client's
      // first event may be on its way before the `connection` listener that
      // adds its handler has run (events and connects arrive in order, so
      // it finds its handler here, as in socket.io).
      kinds |= KINDS.connect | KINDS.login | KINDS.disconnect | KINDS.event;
    }
    let custom = null;
    if (this.#handlers.size > 0) {
      kinds |= KINDS.event;
      // 'event' listeners and sockets want every custom event; handlers
      // only theirs.
      if (!this.#listeners.has('event') && !sockets) custom = [...this.#handlers.keys()];
    }
    this.#native.setEventFilter(kinds, custom);
  }

  /** @internal The socket object of `id` in `ns`, if one was handed out. */
  _socket(ns, id) {
    return this.#sockets.get(`${ns}\0${id}`);
  }

  /** A batch of events from Rust: one JSON array, attachments end to end. */
  #deliverBatch(json, buffers, counts, ackIds) {
    let events;
    try {
      events = JSON.parse(json);
    } catch {
      return;
    }
    let at = 0;
    for (let i = 0; i < events.length; i++) {
      const n = counts[i];
      const mine = n === 0 ? NO_BUFFERS : buffers.slice(at, at + n);
      at += n;
      this.#deliver(events[i], mine, ackIds[i] >= 0 ? ackIds[i] : null);
    }
  }

  #deliver(event, buffers, ackId) {
    const type = event.type;
    delete event.type;
    if (event.auth !== undefined) event.auth = reconstruct(event.auth, buffers);
    let ack = null;
    if (ackId !== null && ackId !== undefined) {
      const nativeHub = this.#native;
      const token = {};
      ack = (...args) => {
        releaseAcks.unregister(token);
        const [argsJson, bins] = encode(args);
        return nativeHub.ack(ackId, argsJson, bins);
      };
      releaseAcks.register(ack, { nativeHub, id: ackId }, token);
    }
    const key = `${event.ns}\0${event.sid}`;
    if (type === 'event') {
      event.args = reconstruct(event.args, buffers);
      if (ack) event.ack = ack;
      const handlers = this.#handlers.get(event.event) ?? [];
      for (const handler of [...handlers]) {
        const socket = new SocketHandle(this, event.ns, event.sid, event.name);
        this._call(handler, socket, ...event.args, ...(ack ? [ack] : []));
      }
      this.#sockets.get(key)?._dispatch(event.event, event.args, ack);
      this.#emitLocal('event', event);
      return;
    }
    if (type === 'connect') {
      const nsp = this.#nsps.get(event.ns);
      if (nsp && nsp._wantsSockets) {
        const now = new Date();
        const socket = new Socket(this, nsp, event.sid, {
          auth: event.auth ?? {},
          address: event.address ?? null,
          headers: event.headers ?? {},
          time: now.toString(),
          issued: now.getTime(),
        }, event.recovered === true);
        this.#sockets.set(key, socket);
        nsp._connected(socket);
      }
    } else if (type === 'login') {
      const socket = this.#sockets.get(key);
      if (socket) socket.name = event.name;
    } else if (type === 'disconnect') {
      const socket = this.#sockets.get(key);
      if (socket) {
        this.#sockets.delete(key);
        socket._left(event.reason);
      }
    }
    if (this.#listeners.has(type)) this.#emitLocal(type, event);
    if (type === 'connect' && this.#listeners.has('connection')) this.#emitLocal('connection', event);
  }

  #emitLocal(name, event) {
    for (const listener of [...(this.#listeners.get(name) ?? [])]) this._call(listener, event);
  }

  /** @internal Calls application code; its exceptions surface as Node's. */
  _call(fn, ...args) {
    try {
      const r = fn(...args);
      if (r && typeof r.then === 'function') r.then(undefined, (e) => process.nextTick(() => { throw e; }));
    } catch (e) {
      // A listener's exception is the application's: surface it as Node would.
      process.nextTick(() => { throw e; });
    }
  }

  // --- decide --------------------------------------------------------------

  /**
   * Adds a connect hook: `hook({ ns, sid, auth, address, headers })` may
   * return (or resolve to) `true`/`undefined` to accept, `false` or a
   * string (the reason) to refuse, or throw (its message is the reason).
   * Hooks run one after another in the order they were added, as
   * socket.io's middlewares do; the first refusal stops the chain and its
   * reason reaches the client as its `connect_error` (without one, the
   * hub's `refused`). `null` removes every connect hook.
   */
  use(hook) {
    this.#addHook('setConnectHook', this.#connectHooks, hook, (req, buffers) => {
      req.auth = reconstruct(req.auth, buffers);
      return req;
    });
    return this;
  }

  /** Adds a login hook: `hook({ ns, sid, name, current })`, chained as `use`. */
  useLogin(hook) {
    this.#addHook('setLoginHook', this.#loginHooks, hook, (req) => req);
    return this;
  }

  #connectHooks = [];
  #loginHooks = [];

  #addHook(method, chain, hook, prepare) {
    const nativeHub = this._native();
    if (hook === null || hook === undefined) {
      chain.length = 0;
      nativeHub[method](null);
      return;
    }
    checkFunction(hook, 'the hook');
    chain.push(hook);
    if (chain.length > 1) return; // the hub already runs the chain
    nativeHub[method]((json, decisionId) => {
      const req = prepare(JSON.parse(json), []);
      // The reason of the first hook that refuses; null: all accepted. An
      // empty reason gets the hub's own text.
      const decide = async () => {
        for (const h of [...chain]) {
          let answer;
          try {
            answer = await h(req);
          } catch (err) {
            return (err && err.message) || String(err);
          }
          if (answer === undefined || answer === true) continue;
          return typeof answer === 'string' ? answer : '';
        }
        return null;
      };
      decide().then((reason) => native.hookDecision(decisionId, reason));
    });
  }

  // --- act -----------------------------------------------------------------

  /** A namespace of the hub (the same object each time). */
  of(ns) {
    checkNonEmpty(ns, 'the namespace');
    let nsp = this.#nsps.get(ns);
    if (!nsp) {
      this._native().checkNamespace(ns);
      nsp = new Namespace(this, ns);
      this.#nsps.set(ns, nsp);
    }
    return nsp;
  }

  /** The sockets in `room` (or rooms) of the main namespace `/`. */
  to(room) {
    return this.of('/').to(room);
  }

  /** Every socket of the main namespace but those in `room` (or by id). */
  except(room) {
    return this.of('/').except(room);
  }

  /** `fetchSockets()` of the main namespace `/`. */
  fetchSockets() {
    return this.of('/').fetchSockets();
  }

  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }

  /** The lobby of the main namespace. */
  lobby() {
    return this.of('/').lobby();
  }

  /** Sends `event` to every socket of the main namespace. */
  emit(event, ...args) {
    return this.of('/').emit(event, ...args);
  }

  // --- serve ---------------------------------------------------------------

  /**
   * Serves Socket.IO on an existing `http.Server` or `https.Server`, on
   * its own port: requests and upgrades under `/socket.io/` go to the hub,
   * everything else to the server's own handlers. Closing the server
   * closes the hub, and `close()` closes the server (as socket.io's
   * `io.close()`). A server attached twice is an error.
   */
  attach(server) {
    this._native();
    if (!server || typeof server.on !== 'function' || typeof server.listeners !== 'function') {
      throw new TypeError('attach needs an http.Server or https.Server');
    }
    if (this.#servers.has(server)) throw new Error('this server is attached to this hub already');
    this.#servers.add(server);
    const ours = (url) => typeof url === 'string'
      && (url === this.#path || url.startsWith(`${this.#path}/`) || url.startsWith(`${this.#path}?`));

    const previous = server.listeners('request').slice();
    server.removeAllListeners('request');
    server.on('request', (req, res) => {
      if (ours(req.url)) {
        this.#serveRequest(req, res);
      } else {
        for (const listener of previous) listener.call(server, req, res);
      }
    });
    server.on('upgrade', (req, socket, head) => {
      if (ours(req.url)) {
        this.#serveUpgrade(req, socket, head);
      } else if (server.listenerCount('upgrade') === 1) {
        socket.destroy();
      }
    });
    server.once('close', () => {
      this.close().catch(() => {});
    });
    return this;
  }

  /**
   * Listens on a port of the hub's own (no Node server in the way);
   * resolves with the port (0: a free one).
   */
  async listen(port = 0, host = '127.0.0.1') {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`port must be an integer in 0..65535, got ${describe(port)}`);
    }
    checkString(host, 'the host');
    // A busy port throws as Node's own servers do: err.code EADDRINUSE, …
    const bound = this._native().listen(host, port);
    // Like a listening net.Server, the hub's own port keeps the process
    // alive until close().
    this.#keepAlive ??= setInterval(() => {}, 2 ** 30);
    return bound;
  }

  #keepAlive = null;

  #serveRequest(req, res) {
    // Also while closing: clients fetch their disconnect through here.
    const nativeHub = this.#native;
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    // A body that never ends is cut after the hub's request timeout, as
    // the hub's own listener does, whatever the server's own settings.
    const timer = setTimeout(() => {
      if (!res.headersSent) res.writeHead(408, { 'content-type': 'text/plain', connection: 'close' });
      res.end('request body timeout');
      req.destroy();
    }, this.#requestTimeout);
    timer.unref();
    req.on('close', () => clearTimeout(timer));
    req.on('end', () => clearTimeout(timer));
    req.on('data', (chunk) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > this.#maxPayload) {
        // As socket.io: a payload over the limit ends this request only.
        tooLarge = true;
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
        res.end('payload too large');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (tooLarge) return;
      let pending;
      let done = false;
      try {
        pending = nativeHub.request(
          req.method,
          req.url,
          req.rawHeaders,
          Buffer.concat(chunks, size),
          remoteOf(req.socket),
          (error, status, headers, body) => {
            done = true;
            if (res.destroyed || res.writableEnded) return;
            if (error !== null) {
              res.writeHead(500, { 'content-type': 'text/plain' });
              res.end(error);
              return;
            }
            res.writeHead(status, headers);
            res.end(body);
          },
        );
      } catch (e) {
        const closed = e && e.code === 'ERR_HUB_CLOSED';
        res.writeHead(closed ? 503 : 400, { 'content-type': 'text/plain' });
        res.end(String((e && e.message) || e));
        return;
      }
      res.on('close', () => {
        if (!done) pending.cancel();
      });
    });
  }

  #serveUpgrade(req, socket, head) {
    const nativeHub = this.#native;
    socket.on('error', () => {});
    const fd = socket._handle && typeof socket._handle.fd === 'number' ? socket._handle.fd : -1;
    if (socket.encrypted || fd < 0) {
      this.#pump(nativeHub, req, socket, head);
      return;
    }
    // Stop reading, keep whatever Node already buffered, hand the
    // descriptor to Rust (it duplicates it), then let go of ours without
    // shutting the connection down.
    socket.pause();
    const parts = [head];
    let extra;
    while ((extra = socket.read()) !== null) parts.push(extra);
    try {
      nativeHub.adopt(fd, req.method, req.url, req.rawHeaders, Buffer.concat(parts));
    } catch (e) {
      if (e && e.code === 'ERR_HUB_CLOSED') {
        socket.destroy();
        return;
      }
      // Not adoptable after all (a socket of another kind): pump it.
      socket.resume();
      this.#pump(nativeHub, req, socket, Buffer.concat(parts));
      return;
    }
    socket.destroy();
  }

  #pump(nativeHub, req, socket, head) {
    let pump;
    try {
      pump = nativeHub.openPump(
        req.method,
        req.url,
        req.rawHeaders,
        head,
        remoteOf(socket),
        (chunk) => {
          if (chunk === null) {
            socket.end();
          } else if (!socket.write(chunk)) {
            pump.pause();
          }
        },
        () => socket.resume(),
      );
    } catch {
      socket.destroy();
      return;
    }
    socket.on('drain', () => pump.resume());
    socket.on('data', (data) => {
      if (!pump.write(data)) socket.pause();
    });
    socket.on('end', () => pump.end());
    socket.on('close', () => pump.destroy());
    socket.resume();
  }

  // --- stop ----------------------------------------------------------------

  /**
   * Stops the hub gracefully: every client is disconnected (`io server
   * disconnect`), connections are closed, the hub's threads stop. Resolves
   * once done; safe to call twice.
   */
  close() {
    if (!this.#closing) {
      if (this.#keepAlive) clearInterval(this.#keepAlive);
      this.#keepAlive = null;
      // As socket.io's io.close(): then the servers it was attached to
      // close too (after the hub's own shutdown, during which long-polling
      // clients still fetch their disconnect through them).
      this.#closing = this.#native.close().then(() => {
        for (const server of this.#servers) {
          if (server.listening) server.close(() => {});
        }
      });
    }
    return this.#closing;
  }
}

function remoteOf(socket) {
  const { remoteAddress, remotePort } = socket;
  if (!remoteAddress || !remotePort) return null;
  return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}

// ---------------------------------------------------------------------------
// Logs.

const LEVELS = ['', 'error', 'warn', 'info', 'debug', 'trace'];

/**
 * Sends the hub's logs (every hub of this process) somewhere. `filter` as
 * `RUST_LOG` takes it (`'info'`, `'chathub=debug'`; default: `RUST_LOG`,
 * else `'info'`). With a `listener(line)`, each line is
 * `{ level: 'error'|'warn'|'info'|'debug'|'trace', target, message }` on
 * Node's thread; without one, lines go to standard error (as text, or with
 * `{ format: 'json' }` one JSON object per line). Once per process.
 */
function logTo(listener, filter, options) {
  if (filter !== undefined && filter !== null) checkString(filter, 'the log filter');
  const format = options?.format ?? 'plain';
  if (format !== 'plain' && format !== 'json') {
    throw new TypeError(`the log format must be "plain" or "json", got ${describe(format)}`);
  }
  if (listener === undefined || listener === null) {
    if (format === 'json') native.logToStderrJson(filter ?? null);
    else native.logToStderr(filter ?? null);
    return;
  }
  checkFunction(listener, 'the log listener');
  native.logToCallback(filter ?? null, (level, target, message) => {
    listener({ level: LEVELS[level] ?? 'trace', target, message });
  });
}

module.exports = { Hub, HubError, Namespace, Socket, SocketHandle, BroadcastTarget, BroadcastOperator, encode, reconstruct, logTo };
