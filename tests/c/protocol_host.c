/*
 * A C host with namespaces of its own only (no chat): the server the
 * official Socket.IO protocol test suite expects (its Readme's setup), for
 * the conformance tests through the C face.
 *
 *   PORT=3000 protocol_host
 *
 * `/` and `/custom` emit `auth` (the handshake's payload) to each socket
 * that connects; on `/`, `message` is sent back as `message-back` and
 * `message-with-ack` is acknowledged with its own arguments (binary
 * attachments included). Ping interval 300 ms, ping timeout 200 ms,
 * maxPayload 1,000,000, connect timeout 1 s, any origin. Stops on SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chathub.h"

static chathub_hub *hub;

/* The event's attachments, as the emit functions take them. */
static size_t attachments(const chathub_event *ev, chathub_bytes *out, size_t max) {
  size_t n = chathub_event_attachment_count(ev);
  if (n > max) n = max;
  for (size_t i = 0; i < n; i++) {
    if (chathub_event_attachment(ev, i, &out[i].data, &out[i].len) != CHATHUB_RESULT_OK) return i;
  }
  return n;
}

static void on_event(void *userdata, const chathub_event *ev) {
  (void)userdata;
  const char *ns = chathub_event_ns(ev, NULL);
  const char *sid = chathub_event_sid(ev, NULL);
  chathub_bytes bins[64];
  size_t nbins = attachments(ev, bins, 64);
  if (chathub_event_kind(ev) == CHATHUB_KIND_CONNECT) {
    const char *auth = chathub_event_auth_json(ev, NULL);
    size_t len = strlen(auth) + 3;
    char *args = malloc(len);
    if (!args) return;
    snprintf(args, len, "[%s]", auth);
    chathub_hub_emit(hub, CHATHUB_TARGET_SOCKET, ns, sid, "auth", args, bins, nbins);
    free(args);
    return;
  }
  if (chathub_event_kind(ev) != CHATHUB_KIND_CUSTOM || strcmp(ns, "/") != 0) return;
  const char *name = chathub_event_event_name(ev, NULL);
  const char *args = chathub_event_args_json(ev, NULL);
  if (strcmp(name, "message") == 0) {
    chathub_hub_emit(hub, CHATHUB_TARGET_SOCKET, ns, sid, "message-back", args, bins, nbins);
  } else if (strcmp(name, "message-with-ack") == 0) {
    chathub_ack *ack = NULL;
    if (chathub_event_take_ack(ev, &ack) == CHATHUB_RESULT_OK) {
      chathub_ack_send(ack, args, bins, nbins);
      chathub_ack_free(ack);
    }
  }
}

static int failed(chathub_result r, const char *what) {
  if (r == CHATHUB_RESULT_OK) return 0;
  fprintf(stderr, "protocol_host: %s: %s (%s)\n", what, chathub_result_text(r),
          chathub_last_error_message());
  return 1;
}

int main(void) {
  const char *port = getenv("PORT") ? getenv("PORT") : "3000";
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%s", port);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);

  chathub_config *config = NULL;
  if (failed(chathub_config_new(&config), "config")) return 1;
  if (failed(chathub_config_set_bind(config, addr), "bind") ||
      failed(chathub_config_clear_namespaces(config), "namespaces") ||
      failed(chathub_config_add_host_namespace(config, "/"), "host namespace") ||
      failed(chathub_config_add_host_namespace(config, "/custom"), "host namespace") ||
      failed(chathub_config_set_ping_interval_ms(config, 300), "ping interval") ||
      failed(chathub_config_set_ping_timeout_ms(config, 200), "ping timeout") ||
      failed(chathub_config_set_max_payload(config, 1000000), "max payload") ||
      failed(chathub_config_set_connect_timeout_ms(config, 1000), "connect timeout") ||
      failed(chathub_config_add_cors_origin(config, "*"), "cors") ||
      failed(chathub_config_set_serve_page(config, false), "page")) {
    chathub_config_free(config);
    return 1;
  }
  chathub_result started = chathub_hub_start(config, &hub);
  chathub_config_free(config);
  if (failed(started, "start")) return 1;
  uint16_t bound = 0;
  if (failed(chathub_hub_subscribe(hub, CHATHUB_KIND_CONNECT | CHATHUB_KIND_CUSTOM, on_event, NULL),
             "subscribe") ||
      failed(chathub_hub_port(hub, &bound), "port")) {
    chathub_hub_free(hub);
    return 1;
  }
  printf("chathub C protocol host listening on http://127.0.0.1:%u/\n", (unsigned)bound);
  fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  chathub_hub_stop(hub);
  chathub_hub_free(hub);
  printf("chathub stopped\n");
  return 0;
}
