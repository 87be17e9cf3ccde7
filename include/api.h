/* api: the server API for backends (README "Server API"; the contract is
 * docs/api/openapi.yaml). JSON over HTTP on a listener of its own
 * (--api-listen), each request with `Authorization: Bearer KEY`, served by
 * libevent's evhttp on the gateway's one event loop. Every action goes
 * through the gateway's bus, so any gateway answers for the whole cluster:
 * a publish takes the path and the script of a client's chat (same ids,
 * order, dedupe), a disconnect or a removal from a room is a control frame
 * (proto.h) that every gateway receives on the broadcast channel.
 *
 * The listener has its own connection limit (--api-max-connections): past
 * it, accepting pauses and new connections wait in the kernel's queue, so
 * backends never take sockets or turns from the chat listener beyond it.
 * Each connection has at most one request in flight (evhttp reads the next
 * only after answering), bodies are bounded (--api-max-body-bytes, 413 from
 * evhttp), headers by --max-header-bytes, idle connections by
 * --handshake-timeout. */
#ifndef GATEWAY_API_H
#define GATEWAY_API_H

struct api;
struct event_base;
struct gateway;

/* Listens on cfg's --api-listen; NULL (logged) when it cannot. */
struct api *api_new(struct event_base *base, struct gateway *g);
/* Answers what is in flight with 503 and closes every API connection. */
void api_free(struct api *a);

#endif
