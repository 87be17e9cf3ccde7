/* The Redis bus's connections are opened here: TCP on the event base, then
 * TLS for rediss:// and rediss+sentinel://. hiredis 1.2.0's own context
 * sets SNI but never checks the server's name against its certificate, so
 * the gateway builds the SSL_CTX itself and gives hiredis an SSL per
 * connection with the name check set (X509_VERIFY_PARAM_set1_host, or
 * _set1_ip_asc for an address). */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "bus_redis_internal.h" /* hiredis.h, which hiredis_ssl.h needs first */

#include <hiredis/hiredis_ssl.h>

#include <hiredis/adapters/libevent.h>

#include "log.h"

/* The name the certificate must hold: the flag's, or the host connected to
 * (the URL's, a sentinel's, or the primary's as a sentinel named it). */
static const char *server_name(const struct config *cfg, const char *host)
{
    return cfg->redis_tls_server_name[0] ? cfg->redis_tls_server_name : host;
}

redisAsyncContext *redis_open(struct rbus *rb, const char *host, int port, SSL **ssl, void *data,
                              redisConnectCallback *on_connect,
                              redisDisconnectCallback *on_disconnect, char *why, size_t whylen)
{
    *ssl = NULL;
    redisAsyncContext *c = redisAsyncConnect(host, port);
    if (!c) {
        snprintf(why, whylen, "could not create a connection: out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, whylen, "%s", c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    /* TLS before anything is written, so that AUTH goes encrypted. */
    if (rb->tls && !(*ssl = redis_tls_start(rb->tls, rb->base.cfg, host, &c->c))) {
        snprintf(why, whylen, "cannot start TLS: %s", c->c.err ? c->c.errstr : "out of memory");
        redisAsyncFree(c);
        return NULL;
    }
    c->data = data;
    redisLibeventAttach(c, rb->base.base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

/* The newest OpenSSL error's reason, or what to say without one. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : fallback;
}

/* The last certificate check's error, recorded as it happens: by the time
 * a failure reaches teardown the SSL that saw it may be another than the
 * ones asked (the attempt's other connection). One event-loop thread: a
 * static is enough. */
static int last_verify_error = X509_V_OK;

static int on_verify(int ok, X509_STORE_CTX *store)
{
    if (!ok)
        last_verify_error = X509_STORE_CTX_get_error(store);
    return ok;
}

/* The context with cfg's CA, certificate and key loaded; NULL after
 * logging which flag's file cannot be used. */
static SSL_CTX *load_ctx(const struct config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        log_error("redis: TLS: cannot create a context: %s", ssl_reason("out of memory"));
        return NULL;
    }
    /* Redis 6 speaks TLS 1.2 and 1.3; anything older is broken. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    const char *flag = NULL, *file = NULL;
    ERR_clear_error();
    if (cfg->redis_tls_ca[0]) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->redis_tls_ca, NULL) != 1)
            flag = "redis-tls-ca", file = cfg->redis_tls_ca;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        flag = "redis-tls-ca", file = "the system's CA store";
    }
    if (!flag && cfg->redis_tls_cert[0]) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->redis_tls_cert) != 1)
            flag = "redis-tls-cert", file = cfg->redis_tls_cert;
        else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->redis_tls_key, SSL_FILETYPE_PEM) != 1)
            flag = "redis-tls-key", file = cfg->redis_tls_key;
        else if (SSL_CTX_check_private_key(ctx) != 1)
            flag = "redis-tls-key", file = "it (does not match --redis-tls-cert)";
    }
    if (flag) {
        /* The reason names what is wrong with the file, never its contents. */
        log_error("invalid value for --%s: cannot use %s: %s", flag, file,
                  ssl_reason("unknown error"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

bool bus_redis_check(const struct config *cfg)
{
    if (!cfg->redis_enabled || !cfg->redis_tls)
        return true;
    SSL_CTX *ctx = load_ctx(cfg);
    SSL_CTX_free(ctx);
    return ctx != NULL;
}

SSL_CTX *redis_tls_ctx_new(const struct config *cfg)
{
    SSL_CTX *ctx = load_ctx(cfg);
    if (!ctx)
        return NULL;
    SSL_CTX_set_verify(ctx, cfg->redis_tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, on_verify);
    const char *ca = cfg->redis_tls_ca[0] ? cfg->redis_tls_ca : "system";
    const char *client = cfg->redis_tls_cert[0] ? "yes" : "no";
    if (cfg->redis_sentinel)
        log_info("redis: TLS to the sentinels and to the primary of '%s' (server name %s, CA %s, "
                 "client certificate %s)",
                 cfg->redis_master_name,
                 cfg->redis_tls_server_name[0] ? cfg->redis_tls_server_name
                                               : "each node's address as the sentinels give it",
                 ca, client);
    else
        log_info("redis: TLS to %s:%d (server name %s, CA %s, client certificate %s)",
                 cfg->redis_host, cfg->redis_port, server_name(cfg, cfg->redis_host), ca, client);
    if (cfg->redis_tls_insecure)
        log_warn("redis: TLS certificate and server name are NOT verified "
                 "(--redis-tls-insecure-skip-verify): anyone on the path to Redis can read and "
                 "change the traffic, passwords included");
    return ctx;
}

SSL *redis_tls_start(SSL_CTX *ctx, const struct config *cfg, const char *host, redisContext *c)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    const char *name = server_name(cfg, host);
    /* SNI is for host names only (RFC 6066): not for an IP address. */
    bool is_ip = strchr(name, ':') || strspn(name, "0123456789.") == strlen(name);
    bool ok = (is_ip || SSL_set_tlsext_host_name(ssl, name) == 1);
    if (ok && !cfg->redis_tls_insecure) {
        /* Checks a DNS name or, for an address, the IP SAN. */
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1
                   : X509_VERIFY_PARAM_set1_host(param, name, 0) == 1;
    }
    /* On success hiredis owns the SSL and frees it with the context. */
    if (!ok || redisInitiateSSL(c, ssl) != REDIS_OK) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

bool redis_tls_why(SSL *a, SSL *b, char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    /* Only the TLS library's: the queue is the thread's, shared with the
     * listener's TLS. */
    const char *reason = e && ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error(); /* not to be reported again for the next attempt */
    if (!reason)
        return false;
    /* Also set (but not acted upon) with verification off: only said with
     * an error it caused. */
    long v = a ? SSL_get_verify_result(a) : X509_V_OK;
    if (v == X509_V_OK && b)
        v = SSL_get_verify_result(b);
    if (v == X509_V_OK)
        v = last_verify_error;
    last_verify_error = X509_V_OK;
    if (v != X509_V_OK)
        snprintf(buf, len, "TLS handshake refused: %s: %s", reason,
                 X509_verify_cert_error_string(v));
    else
        snprintf(buf, len, "TLS: %s", reason);
    return true;
}

void redis_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}
