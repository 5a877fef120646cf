#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H
// The only C the Swift side sees of hiredis (0.14, RESP2). Only Sources/RedisClient/HiredisConnection.swift imports it.
#include <stddef.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

/// `errstr` is a fixed char array, which Swift sees as a 128-element tuple; a pointer is simpler to read.
static inline const char *
chiredis_errstr(const redisContext *c)
{
    return c->errstr;
}

/// The reply types are macros; named here so the Swift side does not depend on how they import.
static inline int chiredis_reply_string(void) { return REDIS_REPLY_STRING; }
static inline int chiredis_reply_array(void) { return REDIS_REPLY_ARRAY; }
static inline int chiredis_reply_integer(void) { return REDIS_REPLY_INTEGER; }
static inline int chiredis_reply_nil(void) { return REDIS_REPLY_NIL; }
static inline int chiredis_reply_status(void) { return REDIS_REPLY_STATUS; }
static inline int chiredis_reply_error(void) { return REDIS_REPLY_ERROR; }

#endif
