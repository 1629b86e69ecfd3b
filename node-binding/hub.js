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

/**
 * Whether `value` is JSON as it stands: no Buffer, no `toJSON`, nothing
 * `JSON.stringify` would change or `deconstruct` refuse (the common case,
 * which then needs no copy).
 */
function plain(value, depth) {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (depth > MAX_DEPTH || typeof value.toJSON === 'function' || isBinary(value)) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!plain(value[i], depth + 1)) return false;
    return true;
  }
  for (const k in value) {
    if (!Object.prototype.hasOwnProperty.call(value, k) || !plain(value[k], depth + 1)) return false;
  }
  return true;
}

/** Encodes event arguments for the native side: [json, buffers]. */
function encode(args) {
  let simple = true;
  for (let i = 0; i < args.length && simple; i++) simple = plain(args[i], 1);
  if (simple) return [JSON.stringify(args), NO_BUFFERS];
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

/**
 * socket.io's `handshake.headers` from the hub's `name\0value\0…` text:
 * by lower-case name, several values joined with `", "`.
 */
function headersObject(text) {
  const out = {};
  if (typeof text !== 'string') return text ?? out;
  const parts = text.split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const name = parts[i];
    const value = parts[i + 1];
    out[name] = Object.prototype.hasOwnProperty.call(out, name) ? `${out[name]}, ${value}` : value;
  }
  return out;
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
  // One wrapper per method, made once (not a closure per call).
  const wrappers = new Map();
  return new Proxy(nativeHub, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      let wrapped = wrappers.get(key);
      if (wrapped !== undefined) return wrapped;
      wrapped = (...args) => {
        let r;
        try {
          r = v.apply(target, args);
        } catch (e) {
          throw hubError(e);
        }
        return r && typeof r.then === 'function' ? r.catch((e) => { throw hubError(e); }) : r;
      };
      wrappers.set(key, wrapped);
      return wrapped;
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
  redisTlsCa: 'string',
  redisCluster: 'boolean',
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
  metricsPath: 'string',
  metricsBind: 'string',
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

const NO_ROOMS = Object.freeze([]);

/**
 * A socket, as socket.io's server gives it to `connection` listeners (and
 * to namespace middlewares, before it connects): `id`, `handshake`, `data`,
 * `rooms`, `on(event, handler)`, `emit`, `emitWithAck`, `join`/`leave`,
 * `to(room)`, `broadcast`, `disconnect()`. What a connection listener may
 * not need (the handshake object, `data`, the handlers' map) is made when
 * first used.
 */
class Socket {
  #hub;
  /** event name -> handlers; made by the first `on`. */
  #handlers = null;
  #auth;
  #address;
  #headers;
  #issued;
  #handshake = null;
  #data = undefined;

  constructor(hub, nsp, id, auth, address, headers, recovered, connected) {
    this.#hub = hub;
    /** The namespace (`hub.of(name)`). */
    this.nsp = nsp;
    /** The socket id (the same after a recovery). */
    this.id = id;
    /** Whether it came back with connection state recovery. */
    this.recovered = recovered;
    /** Whether it is connected (false in a middleware, and once it left). */
    this.connected = connected;
    /** Its chat login name, or null (chat namespaces). */
    this.name = null;
    this.#auth = auth;
    this.#address = address;
    this.#headers = headers;
    this.#issued = Date.now();
  }

  /** The namespace's name. */
  get ns() {
    return this.nsp.name;
  }

  /** `{ auth, address, headers, time, issued }` of its connect. */
  get handshake() {
    if (this.#handshake === null) {
      const issued = this.#issued;
      this.#handshake = {
        auth: this.#auth ?? {},
        address: this.#address ?? null,
        headers: headersObject(this.#headers),
        time: new Date(issued).toString(),
        issued,
      };
    }
    return this.#handshake;
  }

  /** Anything the application keeps for this socket (`{}` at first). */
  get data() {
    if (this.#data === undefined) this.#data = {};
    return this.#data;
  }

  set data(value) {
    this.#data = value;
  }

  /**
   * The rooms the socket is in now, as the hub knows them: its own id, then
   * its rooms (a chat socket's one room, whether it got there by `join()`
   * or by the chat's own join; a host socket's every room). A new `Set`
   * each time; empty before it connects and once it left.
   */
  get rooms() {
    if (!this.connected) return new Set();
    let list = NO_ROOMS;
    try {
      list = this.#hub._native().socketRooms(this.nsp.name, this.id);
    } catch (e) {
      // It left (or the hub closed) before its disconnect reached us.
      if (!(e instanceof HubError) || (e.code !== 'ERR_SOCKET_NOT_FOUND' && e.code !== 'ERR_HUB_CLOSED')) throw e;
    }
    return new Set(list);
  }

  /** @internal It connected (after the middlewares): what the hub says of it. */
  _connect(recovered) {
    this.recovered = recovered;
    this.connected = true;
  }

  /**
   * Handles an event from this socket's client: `handler(...args, ack?)`
   * (ack last when the client asked for one). `disconnect` gets the reason.
   */
  on(event, handler) {
    checkNonEmpty(event, 'the event name');
    checkFunction(handler, 'the handler');
    const handlers = (this.#handlers ??= new Map());
    const list = handlers.get(event);
    if (list === undefined) handlers.set(event, [handler]);
    else list.push(handler);
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
    const list = this.#handlers?.get(event);
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
    if (this.#handlers === null) return this;
    for (const name of event === undefined ? [...this.#handlers.keys()] : [event]) this.off(name);
    return this;
  }

  /** How many handlers `event` has. */
  listenerCount(event) {
    return this.#handlers?.get(event)?.length ?? 0;
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
    const list = this.#handlers?.get(event);
    if (!list) return false;
    if (ack !== null) args.push(ack);
    if (list.length === 1) {
      this.#hub._apply(list[0], args);
    } else {
      for (const handler of [...list]) this.#hub._apply(handler, args);
    }
    return true;
  }

  /** @internal The socket left. */
  _left(reason) {
    this.connected = false;
    if (this.#handlers === null) return;
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

  /**
   * Adds a middleware, as socket.io's `namespace.use`: `fn(socket, next)`
   * runs for each socket that connects to this namespace, after the hub's
   * `use` hooks, in the order they were added; `next()` passes it on,
   * `next(err)` refuses it (its client gets `connect_error` with
   * `err.message`) and stops the chain, as does a throw. The socket is the
   * one `connection` listeners then get (what a middleware puts in
   * `socket.data` is there), not connected yet. A middleware that never
   * calls `next` refuses after the hub's `hookTimeout`.
   */
  use(fn) {
    checkFunction(fn, 'the middleware');
    this.#hub._native();
    this.#middlewares.push(fn);
    this.#hub._syncConnectHook();
    return this;
  }

  #middlewares = [];

  /** @internal The middlewares, in order. */
  get _middlewares() {
    return this.#middlewares;
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
// Hooks and middlewares.

/** How long a socket the middlewares let through waits for its connect. */
const ADMITTED_FOR_MS = 60_000;

/**
 * Runs `use`-style hooks one after another: `true`/`undefined` goes on,
 * `false` or a string (the reason) refuses, a throw refuses with its
 * message. Resolves with the first refusal's reason (`''`: the hub's own
 * text) or null when all accepted.
 */
async function runHooks(chain, req) {
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
}

/** The text a middleware's `next(err)` (or throw) refuses with. */
function refusal(err) {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : String(err);
}

/**
 * Runs socket.io-style middlewares: `fn(socket, next)`, in order; `next()`
 * goes on, `next(err)` or a throw refuses. Resolves with the refusal's
 * text, or null when all let it through. A second call of one `next` is
 * ignored.
 */
function runMiddlewares(fns, socket) {
  const list = [...fns];
  return new Promise((resolve) => {
    let i = 0;
    const step = () => {
      if (i === list.length) {
        resolve(null);
        return;
      }
      const fn = list[i++];
      let called = false;
      const next = (err) => {
        if (called) return;
        called = true;
        if (err !== undefined && err !== null) resolve(refusal(err));
        else step();
      };
      try {
        fn(socket, next);
      } catch (err) {
        if (!called) {
          called = true;
          resolve(refusal(err));
        }
      }
    };
    step();
  });
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
 * The ack of one client event: `fn(...args)` answers it (true the first
 * time, false after). Answered while its batch is being handed out, the
 * answer leaves with the batch's others in one native call; an ack kept
 * past its batch is released when its function is collected unanswered.
 */
class AckState {
  constructor(hub, id) {
    this.hub = hub;
    this.id = id;
    this.done = false;
    this.registered = false;
    this.fn = (...args) => this.answer(args);
  }

  answer(args) {
    if (this.done) return false;
    this.done = true;
    if (this.registered) releaseAcks.unregister(this);
    this.hub._answer(this.id, args);
    return true;
  }
}

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
  #metricsPath = null;
  #maxPayload;
  #requestTimeout;
  #servers = new Set();
  /** Namespace objects, by name (so that their listeners last). */
  #nsps = new Map();
  /** Sockets handed to `connection` listeners: ns -> id -> Socket. */
  #sockets = new Map();
  /** How many sockets `#sockets` holds. */
  #socketTotal = 0;
  /** The native hub without the error wrapper (hot paths). */
  #raw;
  /** Whether a batch of events is being handed out (acks then wait for its end). */
  #inBatch = false;
  /** Acks answered during the batch (`[id, attachments, args]` texts) and their buffers. */
  #acks = [];
  #ackBuffers = [];

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
    this.#raw = new native.NativeHub({ clientDist: defaultClientDist(), ...opts });
    this.#native = withCodes(this.#raw);
    this.#metricsPath = opts.metricsPath || null;
    this.#requestTimeout = this.#native.requestTimeoutMs;
    this.#maxPayload = this.#native.maxPayload;
    this.#native.listenEvents((json, buffers) => this.#deliverBatch(json, buffers));
  }

  /** @internal The native hub, or an Error once closed. */
  _native() {
    if (this.#closing) throw new HubError('the hub is closed', 'ERR_HUB_CLOSED');
    // Acks answered so far leave first: what the application sends after
    // answering reaches the client after the answer, as in socket.io.
    if (this.#acks.length > 0) this.#flushAcks();
    return this.#native;
  }

  /** @internal Answers ack `id` with `args` (now, or with its batch's others). */
  _answer(id, args) {
    const [json, buffers] = encode(args);
    if (!this.#inBatch) {
      this.#raw.ack(id, json, buffers);
      return;
    }
    this.#acks.push(`[${id},${buffers.length},${json}]`);
    for (const b of buffers) this.#ackBuffers.push(b);
  }

  /** Sends the acks answered during this batch, in one call. */
  #flushAcks() {
    const json = `[${this.#acks.join(',')}]`;
    const buffers = this.#ackBuffers;
    this.#acks = [];
    this.#ackBuffers = [];
    this.#raw.ackMany(json, buffers);
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
   * recovery_packets, recovery_bytes, recovery_sessions,
   * connections_polling, connections_websocket, packets_received,
   * events_received, packets_sent, broadcasts, bytes_received, bytes_sent,
   * payload_disconnects, origin_refusals, cluster_published,
   * cluster_received, cluster_down_ms }`.
   */
  get stats() {
    return JSON.parse(this.#native.statsJson);
  }

  /**
   * The same figures (and their breakdowns) as Prometheus text, what
   * `metricsPath` answers: for a server that serves them on a route of
   * its own.
   */
  get metricsText() {
    return this.#native.metricsText;
  }

  /** Where `metricsBind`'s listener listens (`IP:PORT`), or null. */
  get metricsAddress() {
    return this.#native.metricsAddress;
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
    const sockets = [...this.#nsps.values()].some((n) => n._wantsSockets) || this.#socketTotal > 0;
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
    return this.#sockets.get(ns)?.get(id);
  }

  #keep(ns, id, socket) {
    let byId = this.#sockets.get(ns);
    if (byId === undefined) this.#sockets.set(ns, (byId = new Map()));
    if (!byId.has(id)) this.#socketTotal++;
    byId.set(id, socket);
  }

  #forget(ns, id) {
    const byId = this.#sockets.get(ns);
    const socket = byId?.get(id);
    if (socket !== undefined) {
      byId.delete(id);
      this.#socketTotal--;
    }
    return socket;
  }

  /**
   * A batch of events from Rust: one JSON array of `[event, attachments,
   * ackId]` (0: no ack), the attachments end to end. Acks answered while it
   * is handed out leave together at its end.
   */
  #deliverBatch(json, buffers) {
    let events;
    try {
      events = JSON.parse(json);
    } catch {
      return;
    }
    this.#inBatch = true;
    try {
      let at = 0;
      for (let i = 0; i < events.length; i++) {
        const [event, n, ackId] = events[i];
        let mine = NO_BUFFERS;
        if (n !== 0) {
          mine = buffers.slice(at, at + n);
          at += n;
        }
        this.#deliver(event, mine, ackId);
      }
    } finally {
      this.#inBatch = false;
      if (this.#acks.length > 0 && !this.#closing) this.#flushAcks();
    }
  }

  #deliver(event, buffers, ackId) {
    if (Array.isArray(event)) {
      // A client's event: [ns, sid, name, event, args].
      this.#deliverEvent(event[0], event[1], event[2], event[3], event[4], buffers, ackId);
      return;
    }
    const type = event.type;
    delete event.type;
    if (event.auth !== undefined && buffers.length > 0) event.auth = reconstruct(event.auth, buffers);
    if (type === 'connect') {
      const nsp = this.#nsps.get(event.ns);
      if (nsp && nsp._wantsSockets) {
        let socket = this.#admitted.size > 0 ? this._admitted(`${event.ns}\0${event.sid}`) : undefined;
        if (socket === undefined) {
          socket = new Socket(this, nsp, event.sid, event.auth, event.address, event.headers, event.recovered === true, true);
        } else {
          socket._connect(event.recovered === true);
        }
        this.#keep(event.ns, event.sid, socket);
        nsp._connected(socket);
      }
    } else if (type === 'login') {
      const socket = this._socket(event.ns, event.sid);
      if (socket) socket.name = event.name;
    } else if (type === 'disconnect') {
      if (this.#admitted.size > 0) this._admitted(`${event.ns}\0${event.sid}`);
      const socket = this.#forget(event.ns, event.sid);
      if (socket) socket._left(event.reason);
    }
    if (type === 'connect' && (this.#listeners.has('connect') || this.#listeners.has('connection'))) {
      event.headers = headersObject(event.headers);
    }
    if (this.#listeners.has(type)) this.#emitLocal(type, event);
    if (type === 'connect' && this.#listeners.has('connection')) this.#emitLocal('connection', event);
  }

  /** A client's event: hub handlers, then its socket's, then `event` listeners. */
  #deliverEvent(ns, sid, name, eventName, rawArgs, buffers, ackId) {
    const args = buffers.length > 0 ? reconstruct(rawArgs, buffers) : rawArgs;
    const state = ackId !== 0 ? new AckState(this, ackId) : null;
    const ack = state !== null ? state.fn : null;
    const handlers = this.#handlers.get(eventName);
    if (handlers !== undefined) {
      for (const handler of [...handlers]) {
        const socket = new SocketHandle(this, ns, sid, name);
        this._call(handler, socket, ...args, ...(ack ? [ack] : []));
      }
    }
    const listened = this.#listeners.has('event');
    const forListeners = listened ? args.slice() : null;
    const socket = this._socket(ns, sid);
    if (socket !== undefined) socket._dispatch(eventName, args, ack);
    if (listened) {
      const event = { ns, sid, name, event: eventName, args: forListeners };
      if (ack) event.ack = ack;
      this.#emitLocal('event', event);
    }
    // Kept past its batch unanswered: released if its function is collected.
    if (state !== null && !state.done) {
      state.registered = true;
      releaseAcks.register(state.fn, { nativeHub: this.#raw, id: ackId }, state);
    }
  }

  #emitLocal(name, event) {
    for (const listener of [...(this.#listeners.get(name) ?? [])]) this._call(listener, event);
  }

  /** @internal `_call` with the arguments in an array. */
  _apply(fn, args) {
    try {
      const r = fn(...args);
      if (r && typeof r.then === 'function') r.then(undefined, (e) => process.nextTick(() => { throw e; }));
    } catch (e) {
      process.nextTick(() => { throw e; });
    }
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
    if (hook === null || hook === undefined) {
      this.#connectHooks.length = 0;
    } else {
      checkFunction(hook, 'the hook');
      this._native();
      this.#connectHooks.push(hook);
    }
    this._syncConnectHook();
    return this;
  }

  /** Adds a login hook: `hook({ ns, sid, name, current })`, chained as `use`. */
  useLogin(hook) {
    const nativeHub = this._native();
    const chain = this.#loginHooks;
    if (hook === null || hook === undefined) {
      chain.length = 0;
      nativeHub.setLoginHook(null);
      return this;
    }
    checkFunction(hook, 'the hook');
    chain.push(hook);
    if (chain.length > 1) return this; // the hub already runs the chain
    nativeHub.setLoginHook((json, decisionId) => {
      const req = JSON.parse(json);
      runHooks(chain, req).then((reason) => native.hookDecision(decisionId, reason));
    });
    return this;
  }

  #connectHooks = [];
  #loginHooks = [];
  /** Whether the native connect hook is set (it runs both chains). */
  #connectHookSet = false;

  /**
   * @internal Sets the native connect hook while the hub's `use` hooks or a
   * namespace's middlewares want to decide, removes it when none do (a
   * connect then never waits for JavaScript).
   */
  _syncConnectHook() {
    if (this.#closing) return;
    const wanted = this.#connectHooks.length > 0
      || [...this.#nsps.values()].some((n) => n._middlewares.length > 0);
    if (wanted === this.#connectHookSet) return;
    this.#connectHookSet = wanted;
    this.#native.setConnectHook(wanted ? (json, decisionId) => this.#decideConnect(json, decisionId) : null);
  }

  /** The hub's hooks, then the namespace's middlewares; the first refusal wins. */
  async #decideConnect(json, decisionId) {
    let reason = null;
    try {
      const req = JSON.parse(json);
      req.auth = reconstruct(req.auth, NO_BUFFERS);
      reason = await runHooks(this.#connectHooks, req);
      const nsp = reason === null ? this.#nsps.get(req.ns) : undefined;
      if (nsp !== undefined && nsp._middlewares.length > 0) {
        const socket = new Socket(this, nsp, req.sid, req.auth, req.address, req.headers, false, false);
        reason = await runMiddlewares(nsp._middlewares, socket);
        // The same object for its `connection` listeners, once it connects.
        if (reason === null && nsp._wantsSockets) this.#waiting(`${req.ns}\0${req.sid}`, socket);
      }
    } catch (e) {
      reason = (e && e.message) || String(e);
    }
    native.hookDecision(decisionId, reason);
  }

  /** Sockets past the middlewares whose connect has not arrived yet. */
  #admitted = new Map();

  #waiting(key, socket) {
    // A connect that never comes (the client left meanwhile) lets go of it.
    const timer = setTimeout(() => this.#admitted.delete(key), ADMITTED_FOR_MS);
    timer.unref();
    this.#admitted.set(key, { socket, timer });
  }

  /** @internal The socket the middlewares saw, if they saw it. */
  _admitted(key) {
    const entry = this.#admitted.get(key);
    if (entry === undefined) return undefined;
    this.#admitted.delete(key);
    clearTimeout(entry.timer);
    return entry.socket;
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
    // `metricsPath`: the hub answers it (the Prometheus text).
    const metrics = (url) => this.#metricsPath !== null && typeof url === 'string'
      && (url === this.#metricsPath || url.startsWith(`${this.#metricsPath}?`));

    const previous = server.listeners('request').slice();
    server.removeAllListeners('request');
    server.on('request', (req, res) => {
      if (ours(req.url) || metrics(req.url)) {
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
