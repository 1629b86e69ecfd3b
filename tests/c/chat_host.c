/*
 * A C host of the chat hub for the end-to-end tests (tests/e2e/c-host.test.js).
 *
 * It starts a hub on 127.0.0.1:$PORT (0: any free port), prints
 * "chathub C test host listening on http://127.0.0.1:PORT/", and prints one
 * line per event and hook call. Clients drive it with custom events:
 *
 *   echo ...                 acks with the same arguments and attachments
 *   later ...                acks from another thread, after the callback
 *   host:emit [target, ns, to, event, args_json]   acks [result]
 *   host:join / host:leave [ns, sid, room]          acks [result]
 *   host:disconnect [ns, sid]                       acks [result]
 *   host:rooms [ns]                                 acks [result, listing]
 *   host:count []                                   acks [result, count]
 *   host:stop []             acks, then the main thread stops the hub
 *   host:stop-inside []      stops from inside the callback (only asks),
 *                            then the main thread stops (and waits)
 *
 * Hooks: a connect whose auth JSON holds "deny" is refused ("not welcome");
 * the login name "admin" is refused ("reserved").
 *
 * SIGTERM / SIGINT stop it too. After chathub_hub_stop returns, any callback
 * or hook call is an error ("ERROR ..."; exit status 3).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chathub.h"

static chathub_hub *hub;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_returned;
static atomic_int late_calls;
static int stop_pipe[2];

/* Threads answering `later` acks, joined before exit. */
#define MAX_LATER 32
static pthread_t later_threads[MAX_LATER];
static int later_count;
static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&out_lock);
  vprintf(fmt, ap);
  putchar('\n');
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
  va_end(ap);
}

static void request_main_stop(void) {
  char b = 1;
  ssize_t n = write(stop_pipe[1], &b, 1);
  (void)n;
}

static void on_signal(int sig) {
  (void)sig;
  int saved = errno;
  request_main_stop(); /* write() is async-signal-safe */
  errno = saved;
}

static const char *dash(const char *s) { return s ? s : "-"; }

static void check_not_late(const char *what) {
  if (atomic_load(&stop_returned)) {
    atomic_fetch_add(&late_calls, 1);
    say("ERROR %s after chathub_hub_stop returned", what);
  }
}

static const char *result_name(chathub_result r) {
  static const char *const names[] = {
      "OK",           "NULL_PARAMETER",     "INVALID_UTF8",  "INVALID_ARGUMENT",
      "CLOSED",       "PANIC",              "INVALID_CONFIG", "BIND_FAILED",
      "IO",           "UNKNOWN_NAMESPACE",  "SOCKET_NOT_FOUND", "INVALID_ROOM",
      "INVALID_EVENT_NAME", "INVALID_JSON", "DELIVERY_FAILED", "ALREADY_SENT",
      "NO_ACK",       "FAILED",             "REDIS_UNAVAILABLE", "INCOMPATIBLE_VERSION",
      "TIMED_OUT",    "TLS"};
  _Static_assert(sizeof names / sizeof names[0] == CHATHUB_RESULT_COUNT, "a name per result code");
  return r < sizeof names / sizeof names[0] ? names[r] : "UNKNOWN";
}

/* Reads the string elements of a JSON array such as ["a","b\"c"] into
 * `out` (at most `max`, each at most 1023 bytes); non-strings are skipped.
 * Only the escapes \" \\ \/ \n \t are decoded: enough for the commands. */
#define MAX_ARG 1024
static int string_args(const char *json, char out[][MAX_ARG], int max) {
  int n = 0;
  const char *p = json;
  while (*p && n < max) {
    if (*p != '"') {
      p++;
      continue;
    }
    p++;
    size_t len = 0;
    while (*p && *p != '"') {
      char c = *p++;
      if (c == '\\' && *p) {
        c = *p++;
        if (c == 'n') c = '\n';
        if (c == 't') c = '\t';
      }
      if (len + 1 < MAX_ARG) out[n][len++] = c;
    }
    out[n][len] = 0;
    if (*p) p++;
    n++;
  }
  return n;
}

/* Takes the event's ack and answers it with `json`. */
static void answer(const chathub_event *event, const char *json) {
  chathub_ack *ack = NULL;
  chathub_result r = chathub_event_take_ack(event, &ack);
  if (r != CHATHUB_RESULT_OK) {
    say("ERROR take_ack %s", result_name(r));
    return;
  }
  r = chathub_ack_send(ack, json, NULL, 0);
  if (r != CHATHUB_RESULT_OK) say("ack_send %s", result_name(r));
  /* A second answer is refused. */
  if (r == CHATHUB_RESULT_OK && chathub_ack_send(ack, "[]", NULL, 0) != CHATHUB_RESULT_ALREADY_SENT)
    say("ERROR a second ack_send was not refused");
  chathub_ack_free(ack);
}

static void answer_result(const chathub_event *event, chathub_result r) {
  char json[64];
  snprintf(json, sizeof json, "[\"%s\"]", result_name(r));
  answer(event, json);
}

/* `echo`: the same arguments and attachments back. */
static void echo(const chathub_event *event) {
  size_t n = chathub_event_attachment_count(event);
  chathub_bytes bins[8];
  if (n > 8) n = 8;
  for (size_t i = 0; i < n; i++) {
    chathub_result r = chathub_event_attachment(event, i, &bins[i].data, &bins[i].len);
    if (r != CHATHUB_RESULT_OK) say("ERROR attachment %zu: %s", i, result_name(r));
  }
  const uint8_t *none = NULL;
  size_t none_len = 0;
  if (chathub_event_attachment(event, n, &none, &none_len) != CHATHUB_RESULT_INVALID_ARGUMENT)
    say("ERROR attachment past the end was not refused");
  chathub_ack *ack = NULL;
  if (chathub_event_take_ack(event, &ack) != CHATHUB_RESULT_OK) {
    say("ERROR echo without an ack");
    return;
  }
  chathub_ack *again = NULL;
  if (chathub_event_take_ack(event, &again) != CHATHUB_RESULT_NO_ACK || again != NULL)
    say("ERROR the ack was taken twice");
  chathub_result r = chathub_ack_send(ack, chathub_event_args_json(event, NULL), bins, n);
  if (r != CHATHUB_RESULT_OK) say("ERROR echo ack_send %s", result_name(r));
  chathub_ack_free(ack);
}

/* `later`: the ack answered from another thread, after the callback. */
struct later_job {
  chathub_ack *ack;
  char json[MAX_ARG + 16];
};

static void *answer_later(void *arg) {
  struct later_job *job = arg;
  chathub_result r = chathub_ack_send(job->ack, job->json, NULL, 0);
  say("later answered %s", result_name(r));
  chathub_ack_free(job->ack);
  free(job);
  return NULL;
}

static void later(const chathub_event *event) {
  struct later_job *job = calloc(1, sizeof *job);
  if (!job) return;
  if (chathub_event_take_ack(event, &job->ack) != CHATHUB_RESULT_OK) {
    say("ERROR later without an ack");
    free(job);
    return;
  }
  snprintf(job->json, sizeof job->json, "[\"later\",%s]", chathub_event_args_json(event, NULL));
  pthread_mutex_lock(&later_lock);
  int ok = later_count < MAX_LATER &&
           pthread_create(&later_threads[later_count], NULL, answer_later, job) == 0;
  if (ok) later_count++;
  pthread_mutex_unlock(&later_lock);
  if (!ok) {
    chathub_ack_free(job->ack);
    free(job);
  }
}

static uint32_t target_of(const char *name) {
  if (strcmp(name, "socket") == 0) return CHATHUB_TARGET_SOCKET;
  if (strcmp(name, "room") == 0) return CHATHUB_TARGET_ROOM;
  if (strcmp(name, "lobby") == 0) return CHATHUB_TARGET_LOBBY;
  if (strcmp(name, "namespace") == 0) return CHATHUB_TARGET_NAMESPACE;
  return 99;
}

/* The answer of `host:ask`: its arguments and a copy of its attachments
 * (valid only during the call), passed on to the asking client. */
struct asked {
  char json[MAX_ARG];
  size_t count;
  uint8_t data[4][64];
  chathub_bytes bins[4];
};

static void on_answer(void *userdata, const chathub_event *answer) {
  check_not_late("an ack answer");
  struct asked *got = userdata;
  if (chathub_event_kind(answer) != CHATHUB_KIND_CUSTOM) say("ERROR answer of kind %u", chathub_event_kind(answer));
  snprintf(got->json, sizeof got->json, "%s", chathub_event_args_json(answer, NULL));
  got->count = chathub_event_attachment_count(answer);
  if (got->count > 4) got->count = 4;
  for (size_t i = 0; i < got->count; i++) {
    const uint8_t *data = NULL;
    size_t len = 0;
    if (chathub_event_attachment(answer, i, &data, &len) != CHATHUB_RESULT_OK || len > 64) len = 0;
    if (len) memcpy(got->data[i], data, len);
    got->bins[i].data = got->data[i];
    got->bins[i].len = len;
  }
}

static void command(const chathub_event *event, const char *name) {
  char a[5][MAX_ARG] = {{0}};
  int n = string_args(chathub_event_args_json(event, NULL), a, 5);
  if (strcmp(name, "host:emit") == 0 && n == 5) {
    answer_result(event, chathub_hub_emit(hub, target_of(a[0]), a[1], a[2][0] ? a[2] : NULL, a[3],
                                          a[4], NULL, 0));
  } else if (strcmp(name, "host:ask") == 0 && n == 5) {
    /* emitWithAck: ns, sid, event, args JSON, timeout ms; answers with the
     * result and the client's answer (its arguments, binary included). */
    struct asked got = {.json = "null"};
    chathub_result r = chathub_hub_emit_with_ack(hub, a[0], a[1], a[2], a[3], NULL, 0,
                                                 strtoull(a[4], NULL, 10), on_answer, &got);
    char json[MAX_ARG + 64];
    snprintf(json, sizeof json, "[\"%s\",%s]", result_name(r), got.json);
    chathub_ack *ack = NULL;
    if (chathub_event_take_ack(event, &ack) == CHATHUB_RESULT_OK) {
      chathub_result sent = chathub_ack_send(ack, json, got.bins, got.count);
      if (sent != CHATHUB_RESULT_OK) say("ERROR ask ack_send %s", result_name(sent));
      chathub_ack_free(ack);
    }
  } else if (strcmp(name, "host:join") == 0 && n == 3) {
    answer_result(event, chathub_hub_join(hub, a[0], a[1], a[2]));
  } else if (strcmp(name, "host:leave") == 0 && n == 3) {
    answer_result(event, chathub_hub_leave(hub, a[0], a[1], a[2]));
  } else if (strcmp(name, "host:disconnect") == 0 && n == 2) {
    /* Answer first: the socket may be the one asking. */
    chathub_ack *ack = NULL;
    chathub_result taken = chathub_event_take_ack(event, &ack);
    chathub_result r = chathub_hub_disconnect(hub, a[0], a[1]);
    if (taken == CHATHUB_RESULT_OK) {
      char json[64];
      snprintf(json, sizeof json, "[\"%s\"]", result_name(r));
      chathub_ack_send(ack, json, NULL, 0);
      chathub_ack_free(ack);
    }
  } else if (strcmp(name, "host:rooms") == 0 && n == 1) {
    char *listing = NULL;
    chathub_result r = chathub_hub_rooms(hub, a[0], &listing);
    if (r == CHATHUB_RESULT_OK) {
      size_t size = strlen(listing) + 16;
      char *json = malloc(size);
      if (json) {
        snprintf(json, size, "[\"OK\",%s]", listing);
        answer(event, json);
        free(json);
      }
    } else {
      answer_result(event, r);
    }
    chathub_string_free(listing);
  } else if (strcmp(name, "host:count") == 0) {
    size_t count = 0;
    chathub_result r = chathub_hub_socket_count(hub, &count);
    char json[64];
    snprintf(json, sizeof json, "[\"%s\",%zu]", result_name(r), count);
    answer(event, json);
  } else if (strcmp(name, "host:stop") == 0) {
    answer_result(event, CHATHUB_RESULT_OK);
    request_main_stop();
  } else if (strcmp(name, "host:stop-inside") == 0) {
    answer_result(event, CHATHUB_RESULT_OK);
    /* From inside a callback: only asks for the stop, returns at once. */
    chathub_result r = chathub_hub_stop(hub);
    say("stop-inside %s", result_name(r));
    request_main_stop();
  } else {
    answer_result(event, CHATHUB_RESULT_INVALID_ARGUMENT);
  }
}

static void on_event(void *userdata, const chathub_event *event) {
  check_not_late("an event callback");
  if (userdata != (void *)&hub) say("ERROR wrong userdata");
  const char *ns = chathub_event_ns(event, NULL);
  const char *sid = chathub_event_sid(event, NULL);
  const char *name = chathub_event_name(event, NULL);
  const char *room = chathub_event_room(event, NULL);
  switch (chathub_event_kind(event)) {
    case CHATHUB_KIND_CONNECT:
      say("connect %s %s auth=%s transport=%s addr=%s", ns, sid,
          chathub_event_auth_json(event, NULL), chathub_event_transport(event, NULL),
          chathub_event_remote_addr(event, NULL) ? "yes" : "no");
      break;
    case CHATHUB_KIND_LOGIN:
      say("login %s %s %s previous=%s room=%s", ns, sid, name,
          dash(chathub_event_previous_name(event, NULL)), dash(room));
      break;
    case CHATHUB_KIND_JOIN:
      say("join %s %s name=%s from=%s to=%s by_host=%d", ns, sid, dash(name),
          dash(chathub_event_from_room(event, NULL)), dash(room), chathub_event_by_host(event));
      break;
    case CHATHUB_KIND_MESSAGE: {
      size_t len = 0;
      const char *text = chathub_event_text(event, &len);
      say("message %s %s name=%s room=%s len=%zu text=%s", ns, sid, dash(name), dash(room), len,
          text);
      break;
    }
    case CHATHUB_KIND_CUSTOM: {
      const char *ev = chathub_event_event_name(event, NULL);
      say("custom %s %s name=%s event=%s args=%s attachments=%zu ack=%d", ns, sid, dash(name), ev,
          chathub_event_args_json(event, NULL), chathub_event_attachment_count(event),
          chathub_event_has_ack(event));
      if (strcmp(ev, "echo") == 0) echo(event);
      else if (strcmp(ev, "later") == 0) later(event);
      else if (strncmp(ev, "host:", 5) == 0) command(event, ev);
      break;
    }
    case CHATHUB_KIND_REJECTED:
      say("rejected %s %s event=%s error=%s", ns, sid, chathub_event_event_name(event, NULL),
          chathub_event_error(event, NULL));
      break;
    case CHATHUB_KIND_DISCONNECT:
      say("disconnect %s %s name=%s room=%s reason=%s", ns, sid, dash(name), dash(room),
          chathub_event_reason(event, NULL));
      break;
    case CHATHUB_KIND_PRESENCE:
      say("presence %s %s %s name=%s room=%s hub=%s", ns, sid, chathub_event_change(event, NULL),
          dash(name), dash(room), dash(chathub_event_node(event, NULL)));
      break;
    default:
      say("ERROR unknown event kind %u", chathub_event_kind(event));
  }
}

static bool connect_hook(void *userdata, const chathub_event *request, char *reason,
                         size_t reason_len) {
  check_not_late("the connect hook");
  if (userdata != (void *)&hub) say("ERROR wrong userdata");
  const char *auth = chathub_event_auth_json(request, NULL);
  const char *cookie = chathub_event_header(request, "Cookie", NULL);
  say("hook connect %s %s auth=%s kind=%u cookie=%s", chathub_event_ns(request, NULL),
      chathub_event_sid(request, NULL), auth, chathub_event_kind(request), dash(cookie));
  if (strstr(auth, "\"deny\"")) {
    snprintf(reason, reason_len, "not welcome");
    return false;
  }
  if (cookie && strstr(cookie, "deny=1")) {
    snprintf(reason, reason_len, "the cookie says no");
    return false;
  }
  if (chathub_event_header(request, NULL, NULL) != NULL ||
      chathub_event_header(NULL, "cookie", NULL) != NULL) {
    say("ERROR a NULL name or event gave a header");
  }
  return true;
}

static bool login_hook(void *userdata, const chathub_event *request, char *reason,
                       size_t reason_len) {
  check_not_late("the login hook");
  (void)userdata;
  const char *name = chathub_event_name(request, NULL);
  say("hook login %s %s %s current=%s", chathub_event_ns(request, NULL),
      chathub_event_sid(request, NULL), name, dash(chathub_event_previous_name(request, NULL)));
  if (strcmp(name, "admin") == 0) {
    snprintf(reason, reason_len, "reserved");
    return false;
  }
  return true;
}

static int fail(const char *what, chathub_result r) {
  fprintf(stderr, "chat_host: %s: %s (%s)\n", what, chathub_result_text(r),
          chathub_last_error_message());
  return 1;
}

int main(void) {
  if (pipe(stop_pipe) != 0) return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%s", getenv("PORT") ? getenv("PORT") : "0");
  chathub_config *config = NULL;
  chathub_result r = chathub_config_new(&config);
  if (r != CHATHUB_RESULT_OK) return fail("config", r);
  if ((r = chathub_config_set_bind(config, addr)) != CHATHUB_RESULT_OK ||
      (r = chathub_config_set_worker_threads(config, 2)) != CHATHUB_RESULT_OK ||
      (r = chathub_config_set_shutdown_timeout_ms(config, 4000)) != CHATHUB_RESULT_OK ||
      /* A namespace of the host's own: no chat rule, any number of rooms. */
      (r = chathub_config_add_host_namespace(config, "/game")) != CHATHUB_RESULT_OK) {
    chathub_config_free(config);
    return fail("config", r);
  }
  r = chathub_hub_start(config, &hub);
  chathub_config_free(config);
  if (r != CHATHUB_RESULT_OK) return fail("start", r);

  uint16_t port = 0;
  if ((r = chathub_hub_set_connect_hook(hub, connect_hook, &hub)) != CHATHUB_RESULT_OK ||
      (r = chathub_hub_set_login_hook(hub, login_hook, &hub)) != CHATHUB_RESULT_OK ||
      (r = chathub_hub_subscribe(hub, CHATHUB_KIND_ALL, on_event, &hub)) != CHATHUB_RESULT_OK ||
      (r = chathub_hub_port(hub, &port)) != CHATHUB_RESULT_OK) {
    chathub_hub_free(hub);
    return fail("set-up", r);
  }
  say("chathub C test host listening on http://127.0.0.1:%u/", (unsigned)port);

  char b;
  while (read(stop_pipe[0], &b, 1) < 0 && errno == EINTR) {
  }
  say("stopping");
  r = chathub_hub_stop(hub);
  atomic_store(&stop_returned, 1);
  say("stopped %s", result_name(r));
  r = chathub_hub_stop(hub);
  say("stopped again %s", result_name(r));

  pthread_mutex_lock(&later_lock);
  int n = later_count;
  pthread_mutex_unlock(&later_lock);
  for (int i = 0; i < n; i++) pthread_join(later_threads[i], NULL);

  chathub_hub_free(hub);
  close(stop_pipe[0]);
  close(stop_pipe[1]);
  say("freed late_calls=%d", atomic_load(&late_calls));
  return atomic_load(&late_calls) ? 3 : 0;
}
