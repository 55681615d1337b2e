// The live connection: one WebSocket to /api/ws for the whole tab. Components subscribe
// to topics (reference-counted, re-sent after every reconnect); the connection heartbeats
// both ways, reconnects with exponential backoff and jitter, and asks everyone to resync
// over REST after a reconnect or a `lagged` notice, because the socket is never the source
// of truth.

const PING_EVERY_MS = 20000;
const SILENCE_LIMIT_MS = 45000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
/** Close code the server uses when the session ended. */
const CLOSE_UNAUTHENTICATED = 4001;

class Live {
  constructor() {
    this.ws = null;
    this.status = 'connecting';
    this.topics = new Map(); // topic → Set<handler>
    this.statusSubs = new Set();
    this.resyncSubs = new Set();
    this.attempt = 0;
    this.connectedOnce = false;
    this.lastHeard = 0;
    this.timer = null;
    this.pinger = null;
    this.running = false;
    this.onUnauthenticated = () => {};
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.connectedOnce = false;
    this.setStatus('connecting');
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/ws`);
    this.ws = ws;
    this.setStatus(this.connectedOnce ? 'closed' : 'connecting');
    ws.onopen = () => {
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.setStatus('open');
      const topics = [...this.topics.keys()];
      if (topics.length) this.send({ op: 'subscribe', topics });
      if (this.connectedOnce) this.resync();
      this.connectedOnce = true;
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.heartbeat(), PING_EVERY_MS);
    };
    ws.onmessage = (e) => {
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.dispatch(msg);
    };
    ws.onclose = (e) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.running) return;
      if (e.code === CLOSE_UNAUTHENTICATED) {
        this.onUnauthenticated();
        return;
      }
      this.setStatus('closed');
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
    };
  }

  heartbeat() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      // The server went quiet: drop this socket and let onclose reconnect.
      this.ws.close(4000, 'silent');
      return;
    }
    this.send({ op: 'ping' });
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  dispatch(msg) {
    if (msg.node) {
      this.dispatchNode(msg);
      return;
    }
    switch (msg.type) {
      case 'state':
        this.emit('programs', msg);
        this.emit('events', msg);
        break;
      case 'console':
        this.emit(`console:${msg.program}`, msg);
        break;
      case 'sample':
        this.emit('samples', msg);
        this.emit(`samples:${msg.program}`, msg);
        break;
      case 'program':
        // A program was created, edited or deleted: lists refetch.
        this.resync();
        break;
      case 'health':
      case 'players':
        // Part of a program's status (`programs`); health changes are also events.
        this.emit('programs', msg);
        if (msg.type === 'health') this.emit('events', msg);
        break;
      case 'backup':
        this.emit('programs', msg);
        this.emit('events', msg);
        break;
      case 'job':
      case 'schedule':
      case 'notice':
        this.emit('events', msg);
        break;
      case 'lagged':
        this.resync();
        break;
      case 'error':
        console.warn('live connection refused a message:', msg.message);
        break;
      default:
        // hello, pong, subscribed, and event types this build does not know yet.
        break;
    }
  }

  /** A fleet node's message relayed by this warden (`node:NODE:TOPIC` topics). */
  dispatchNode(msg) {
    const prefix = `node:${msg.node}:`;
    switch (msg.type) {
      case 'node':
        // The relay reached or lost the node: every topic of that node hears it.
        for (const topic of [...this.topics.keys()]) if (topic.startsWith(prefix)) this.emit(topic, msg);
        break;
      case 'console':
        this.emit(`${prefix}console:${msg.program}`, msg);
        break;
      case 'sample':
        this.emit(`${prefix}samples`, msg);
        this.emit(`${prefix}samples:${msg.program}`, msg);
        break;
      case 'lagged':
        this.resync();
        break;
      case 'error':
        console.warn('a fleet node refused a message:', msg.message);
        break;
      default:
        this.emit(`${prefix}programs`, msg);
        this.emit(`${prefix}events`, msg);
        break;
    }
  }

  emit(topic, msg) {
    const handlers = this.topics.get(topic);
    if (handlers) for (const h of handlers) h(msg);
  }

  resync() {
    for (const fn of this.resyncSubs) fn();
  }

  /** Calls `handler` for every message of `topic`; returns the unsubscribe function. */
  subscribe(topic, handler) {
    let set = this.topics.get(topic);
    if (!set) {
      set = new Set();
      this.topics.set(topic, set);
      this.send({ op: 'subscribe', topics: [topic] });
    }
    set.add(handler);
    return () => {
      set.delete(handler);
      if (set.size === 0 && this.topics.get(topic) === set) {
        this.topics.delete(topic);
        this.send({ op: 'unsubscribe', topics: [topic] });
      }
    };
  }

  /** Calls `fn` whenever state must be refetched over REST; returns the unsubscribe function. */
  onResync(fn) {
    this.resyncSubs.add(fn);
    return () => this.resyncSubs.delete(fn);
  }

  onStatus(fn) {
    this.statusSubs.add(fn);
    return () => this.statusSubs.delete(fn);
  }

  setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    for (const fn of this.statusSubs) fn(s);
  }
}

export const live = new Live();
