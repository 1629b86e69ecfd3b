/*
 * The chapter's chat, served by a C program through libchathub.
 *
 *   make -C examples/c && examples/c/chat_server
 *   PORT=8080 HOST=0.0.0.0 examples/c/chat_server
 *   REDIS_URL=redis://127.0.0.1:6379 examples/c/chat_server   (one hub among many)
 *   FLOOD_LIMITS=off examples/c/chat_server                   (for load generators: no flood
 *                                                             or per-address limits)
 *   REQUEST_TIMEOUT_MS=5000 examples/c/chat_server   (time for a request's head and body)
 *   QUIET=1 examples/c/chat_server        (logs only `my event`, not every connection)
 *   RECOVERY=on examples/c/chat_server    (a dropped client comes back with its name,
 *                                         room and every line it missed)
 *   TLS_CERT=cert.pem TLS_KEY=key.pem examples/c/chat_server   (HTTPS and WSS; SIGHUP
 *                                         re-reads both files)
 *   REDIS_URL=rediss://... REDIS_TLS_CA=ca.pem examples/c/chat_server   (Redis over TLS)
 *   REDIS_URL=... REDIS_BATCH_MS=0 examples/c/chat_server   (no gathering of Redis writes; default 50 ms)
 *   REDIS_URL=redis://node:7000 REDIS_CLUSTER=1 examples/c/chat_server   (a Redis Cluster: sharded pub/sub)
 *   METRICS_PATH=/metrics examples/c/chat_server   (Prometheus metrics on the chat's port)
 *   METRICS_BIND=127.0.0.1:9100 examples/c/chat_server   (Prometheus metrics on a port
 *                                                        of their own)
 *
 * Open http://127.0.0.1:3000/ in two browser tabs. Every event is printed as
 * the chapter's server logs it (`console.log(content)` for `my event`), and
 * Ctrl-C (SIGINT) or SIGTERM stops the hub cleanly: the clients see their
 * transport close (and reconnect to the server once it is back), then the
 * program exits with status 0. Text from clients is printed with its
 * control characters escaped, so that no client can forge log lines.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chathub.h"

/* Prints `what` and the last error, and says whether `r` was a failure. */
static int failed(chathub_result r, const char *what) {
  if (r == CHATHUB_RESULT_OK) return 0;
  fprintf(stderr, "chat_server: %s: %s (%s)\n", what, chathub_result_text(r),
          chathub_last_error_message());
  return 1;
}

/* Writes one character of client text: control characters (newlines,
 * terminal escapes) as \u00XX, so that a client cannot forge log lines. */
static void put_clean_char(int c) {
  unsigned char u = (unsigned char)c;
  if (u < 0x20 || u == 0x7f) printf("\\u%04x", (unsigned)u);
  else putchar(u);
}

/* Writes client text with its control characters escaped. */
static void put_clean(const char *s) {
  if (!s) return;
  for (; *s; s++) put_clean_char(*s);
}

/* Writes one JSON string (starting at its opening quote) decoded, and
 * returns the position after its closing quote. The hub's JSON is valid,
 * so only the escapes of RFC 8259 occur. */
static const char *put_json_string(const char *p) {
  p++; /* the opening quote */
  while (*p && *p != '"') {
    if (*p != '\\') {
      put_clean_char(*p++);
      continue;
    }
    p++;
    switch (*p) {
      case 'n': put_clean_char('\n'); break;
      case 't': put_clean_char('\t'); break;
      case 'r': put_clean_char('\r'); break;
      case 'b': put_clean_char('\b'); break;
      case 'f': put_clean_char('\f'); break;
      case 'u': {
        unsigned long cp = strtoul((char[]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
          unsigned long lo = strtoul((char[]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
        if (cp < 0x80) {
          put_clean_char((int)cp);
        } else if (cp < 0x800) {
          putchar((int)(0xC0 | (cp >> 6)));
          putchar((int)(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
          putchar((int)(0xE0 | (cp >> 12)));
          putchar((int)(0x80 | ((cp >> 6) & 0x3F)));
          putchar((int)(0x80 | (cp & 0x3F)));
        } else {
          putchar((int)(0xF0 | (cp >> 18)));
          putchar((int)(0x80 | ((cp >> 12) & 0x3F)));
          putchar((int)(0x80 | ((cp >> 6) & 0x3F)));
          putchar((int)(0x80 | (cp & 0x3F)));
        }
        break;
      }
      default: putchar(*p); break; /* \" \\ \/ */
    }
    if (*p) p++;
  }
  return *p ? p + 1 : p;
}

/* console.log(content) for each argument of a JSON array: a string as its
 * text, anything else as its JSON. */
static void log_arguments(const char *json) {
  const char *p = json + 1; /* after '[' */
  while (*p && *p != ']') {
    while (*p == ',' || *p == ' ') p++;
    if (*p == ']' || !*p) break;
    if (*p == '"') {
      p = put_json_string(p);
    } else {
      int depth = 0, in_string = 0;
      for (; *p; p++) {
        if (in_string) {
          if (*p == '\\' && p[1]) putchar(*p++);
          else if (*p == '"') in_string = 0;
        } else if (*p == '"') {
          in_string = 1;
        } else if (*p == '[' || *p == '{') {
          depth++;
        } else if (*p == ']' || *p == '}') {
          if (depth == 0) break;
          depth--;
        } else if (*p == ',' && depth == 0) {
          break;
        }
        putchar(*p);
      }
    }
    putchar('\n');
  }
}

/* The event callback: runs on the hub's event thread, one event at a time,
 * so printing needs no lock. The event's strings are valid until it
 * returns. */
static void on_event(void *userdata, const chathub_event *event) {
  (void)userdata;
  const char *ns = chathub_event_ns(event, NULL);
  const char *sid = chathub_event_sid(event, NULL);
  const char *name = chathub_event_name(event, NULL);
  const char *who = name ? name : sid;
  const char *room = chathub_event_room(event, NULL);
  switch (chathub_event_kind(event)) {
    case CHATHUB_KIND_CONNECT:
      printf("[%s] %s %s\n", ns, sid, chathub_event_recovered(event) ? "is back" : "connected");
      break;
    case CHATHUB_KIND_LOGIN:
      printf("[%s] %s logged in as ", ns, sid);
      put_clean(name);
      putchar('\n');
      break;
    case CHATHUB_KIND_JOIN:
      printf("[%s] ", ns);
      put_clean(who);
      printf(" joined ");
      put_clean(room ? room : "the lobby");
      putchar('\n');
      break;
    case CHATHUB_KIND_MESSAGE:
      printf("[%s] ", ns);
      put_clean(who);
      printf(": ");
      put_clean(chathub_event_text(event, NULL));
      putchar('\n');
      break;
    case CHATHUB_KIND_CUSTOM:
      /* The chapter's server: socket.on('my event', content => console.log(content)) */
      log_arguments(chathub_event_args_json(event, NULL));
      break;
    case CHATHUB_KIND_REJECTED:
      printf("[%s] %s %s: %s\n", ns, sid, chathub_event_event_name(event, NULL),
             chathub_event_error(event, NULL));
      break;
    case CHATHUB_KIND_DISCONNECT:
      printf("[%s] ", ns);
      put_clean(who);
      printf(" disconnected (%s)\n", chathub_event_reason(event, NULL));
      break;
    case CHATHUB_KIND_CLUSTER:
      printf("redis link %s: %s\n", chathub_event_flag(event) ? "up" : "down",
             chathub_event_reason(event, NULL));
      break;
    default:
      break;
  }
  fflush(stdout);
}

int main(void) {
  /* The header this program was built with must match the library it runs
   * with (a copied or stale libchathub says so here, not by misbehaving). */
  if (failed(CHATHUB_VERSION_CHECK(), "libchathub")) return 1;
  /* The hub's logs (start, Redis lost, a missing client bundle) go to
   * standard error, filtered by RUST_LOG (default "info"): text, or one JSON
   * object per line with LOG_FORMAT=json. */
  const char *log_format = getenv("LOG_FORMAT");
  int json_logs = log_format && strcmp(log_format, "json") == 0;
  if (failed(json_logs ? chathub_log_to_stderr_json(NULL) : chathub_log_to_stderr(NULL), "logs")) return 1;

  const char *host = getenv("HOST") ? getenv("HOST") : "127.0.0.1";
  const char *port = getenv("PORT") ? getenv("PORT") : "3000";
  char addr[300];
  snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);

  /* SIGINT, SIGTERM and SIGHUP are blocked here, before the hub starts, so
   * that every thread of the hub inherits the mask and only sigwait() below
   * receives them: no signal handler runs at all. */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &signals, NULL) != 0) {
    perror("chat_server: pthread_sigmask");
    return 1;
  }

  chathub_config *config = NULL;
  if (failed(chathub_config_new(&config), "config")) return 1;
  if (failed(chathub_config_set_bind(config, addr), "PORT/HOST")) {
    chathub_config_free(config);
    return 1;
  }
  const char *redis_url = getenv("REDIS_URL");
  if (redis_url && redis_url[0] && failed(chathub_config_set_redis_url(config, redis_url), "REDIS_URL")) {
    chathub_config_free(config);
    return 1;
  }
  const char *flood = getenv("FLOOD_LIMITS");
  if (flood && strcmp(flood, "off") == 0 &&
      (failed(chathub_config_set_flood_limits(config, 0, 0, 0, 0, 0, SIZE_MAX), "FLOOD_LIMITS") ||
       failed(chathub_config_set_ip_limits(config, 0, 0, 0, 0), "FLOOD_LIMITS") ||
       failed(chathub_config_set_max_connections_per_ip(config, 0), "FLOOD_LIMITS"))) {
    chathub_config_free(config);
    return 1;
  }
  /* RECOVERY=on: a client whose connection dropped comes back within two
   * minutes with its name and room, and gets every line it missed. */
  const char *recovery = getenv("RECOVERY");
  if (recovery && strcmp(recovery, "on") == 0 &&
      failed(chathub_config_set_recovery(config, true, true, 120000, 10000, 16u << 20, 100000),
             "RECOVERY")) {
    chathub_config_free(config);
    return 1;
  }
  const char *request_timeout = getenv("REQUEST_TIMEOUT_MS");
  if (request_timeout && request_timeout[0] &&
      failed(chathub_config_set_request_timeout_ms(config, strtoull(request_timeout, NULL, 10)),
             "REQUEST_TIMEOUT_MS")) {
    chathub_config_free(config);
    return 1;
  }
  /* TLS_CERT and TLS_KEY (PEM files) make the listener HTTPS/WSS;
   * REDIS_TLS_CA (a PEM file) is the CA a rediss:// Redis chains to;
   * REDIS_BATCH_MS is how long a busy hub gathers lines into one Redis
   * pipeline (default 50, 0: none); REDIS_CLUSTER=1 says REDIS_URL is a
   * node of a Redis Cluster (sharded pub/sub); METRICS_PATH=/metrics serves
   * Prometheus metrics on the chat's port, METRICS_BIND=IP:PORT on a
   * listener of their own (off by default). All through the config
   * schema's keys. */
  const char *env_keys[][2] = {{"TLS_CERT", "tls_cert"},           {"TLS_KEY", "tls_key"},
                               {"REDIS_TLS_CA", "redis_tls_ca"},   {"REDIS_BATCH_MS", "redis_batch_ms"},
                               {"METRICS_PATH", "metrics_path"},   {"METRICS_BIND", "metrics_bind"},
                               {"REDIS_CLUSTER", "redis_cluster"}};
  for (size_t i = 0; i < sizeof env_keys / sizeof env_keys[0]; i++) {
    const char *value = getenv(env_keys[i][0]);
    if (value && failed(chathub_config_set(config, env_keys[i][1], value), env_keys[i][0])) {
      chathub_config_free(config);
      return 1;
    }
  }
  chathub_hub *hub = NULL;
  chathub_result started = chathub_hub_start(config, &hub);
  chathub_config_free(config); /* the hub keeps its own copy */
  if (failed(started, "start")) return 1;

  uint16_t bound = 0;
  const char *quiet = getenv("QUIET");
  uint32_t kinds = (quiet && quiet[0]) ? (CHATHUB_KIND_CUSTOM | CHATHUB_KIND_CLUSTER) : CHATHUB_KIND_ALL;
  if (failed(chathub_hub_subscribe(hub, kinds, on_event, NULL), "subscribe") ||
      failed(chathub_hub_port(hub, &bound), "port")) {
    chathub_hub_free(hub);
    return 1;
  }
  const char *tls_cert = getenv("TLS_CERT");
  const char *scheme = tls_cert && tls_cert[0] ? "https" : "http";
  printf("chathub C chat server listening on %s://%s%s%s:%u/\n", scheme, strchr(host, ':') ? "[" : "", host,
         strchr(host, ':') ? "]" : "", (unsigned)bound);
  const char *metrics_path = getenv("METRICS_PATH");
  if (metrics_path && metrics_path[0]) {
    printf("metrics at %s://%s%s%s:%u%s\n", scheme, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
           (unsigned)bound, metrics_path);
  }
  char *bundle = NULL;
  if (chathub_hub_client_bundle(hub, &bundle) == CHATHUB_RESULT_OK) {
    printf("client bundle from %s\n", bundle);
    chathub_string_free(bundle);
  } /* else the hub has logged why /socket.io/socket.io.js answers 404 */
  fflush(stdout);

  /* SIGHUP reads the TLS certificate and key again (a renewed
   * certificate); SIGINT or SIGTERM stops. */
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) {
      perror("chat_server: sigwait");
      break;
    }
    if (sig != SIGHUP) break;
    if (!failed(chathub_hub_reload_tls(hub), "TLS certificate not reloaded")) printf("TLS certificate reloaded\n");
    fflush(stdout);
  }

  /* Graceful: every connection is closed (clients reconnect once the
   * server is back); the callback receives the disconnects, and runs no
   * more once stop returns. */
  if (failed(chathub_hub_stop(hub), "stop")) {
    chathub_hub_free(hub);
    return 1;
  }
  chathub_hub_free(hub);
  printf("chathub stopped\n");
  return 0;
}
