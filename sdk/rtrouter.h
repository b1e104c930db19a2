/* rtrouter.h — the rtrouter plugin ABI, version 1, for plugins written in C (sdk/ABI.md is
 * the same definition in prose, sdk/src/abi.rs in Rust). Compile with
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic \
 *         -Wl,--allow-undefined -o my_plugin.wasm my_plugin.c
 * and export, with RTROUTER_EXPORT, rtrouter_abi_version (returning RTROUTER_ABI_VERSION),
 * rtrouter_buffer, rtrouter_buffer_len, rtrouter_init and rtrouter_match and/or
 * rtrouter_target, with the signatures declared below. */
#ifndef RTROUTER_H
#define RTROUTER_H

#include <stdint.h>

#define RTROUTER_ABI_VERSION 1

/* Marks a function as one of the module's exports. */
#define RTROUTER_EXPORT(name) __attribute__((export_name(name)))
/* Declares a host function of module "rtrouter". */
#define RTROUTER_IMPORT(name) __attribute__((import_module("rtrouter"), import_name(name)))

/* The metadata record at the start of the exchange buffer (64 bytes, little endian). */
#define RTROUTER_META_LEN 64
#define RTROUTER_META_VERSION 0      /* u32: the ABI version (1) */
#define RTROUTER_META_HOOK 4         /* u32: a RTROUTER_HOOK_* value */
#define RTROUTER_META_FLAGS 8        /* u32: bit 0 = the packet was cut to max_bytes */
#define RTROUTER_META_LEN_IN_BUF 12  /* u32: packet bytes in the buffer */
#define RTROUTER_META_PACKET_LEN 16  /* u32: the whole packet's length */
#define RTROUTER_META_L4_OFFSET 22   /* u16: transport header offset in the packet (0: none) */
#define RTROUTER_META_IP_VERSION 24  /* u8: 4 or 6 */
#define RTROUTER_META_PROTO 25       /* u8: transport protocol number */
#define RTROUTER_META_CTSTATE 26     /* u8: a RTROUTER_CT_* value */
#define RTROUTER_META_DIR 27         /* u8: 0 original, 1 reply */
#define RTROUTER_META_MARK 28        /* u32: packet mark (a target may write it) */
#define RTROUTER_META_CTMARK 32      /* u32: connection mark (a target may write it) */
#define RTROUTER_META_IN_IF 36       /* u32: ingress interface index + 1 (0: the router's own) */
#define RTROUTER_META_OUT_IF 40      /* u32: egress interface index + 1 (0: not routed, local) */
#define RTROUTER_META_NOW_NS 44      /* u64: the router's monotonic clock, nanoseconds */
#define RTROUTER_META_OUT_FLAGS 52   /* u32: RTROUTER_OUT_* bits a target sets */

#define RTROUTER_OUT_MARK 1u         /* the packet mark at RTROUTER_META_MARK changed */
#define RTROUTER_OUT_CTMARK 2u       /* the connection mark at RTROUTER_META_CTMARK changed */
#define RTROUTER_OUT_PACKET 4u       /* the packet bytes changed (checksums are recomputed) */

#define RTROUTER_HOOK_PREROUTING 0
#define RTROUTER_HOOK_INPUT 1
#define RTROUTER_HOOK_FORWARD 2
#define RTROUTER_HOOK_OUTPUT 3
#define RTROUTER_HOOK_POSTROUTING 4

#define RTROUTER_CT_INVALID 0
#define RTROUTER_CT_NEW 1
#define RTROUTER_CT_ESTABLISHED 2
#define RTROUTER_CT_RELATED 3
#define RTROUTER_CT_UNTRACKED 4

/* What rtrouter_target returns. */
#define RTROUTER_VERDICT_CONTINUE 0
#define RTROUTER_VERDICT_ACCEPT 1
#define RTROUTER_VERDICT_DROP 2
#define RTROUTER_VERDICT_REJECT 3

/* Log levels of rtrouter_log. */
#define RTROUTER_LOG_ERROR 0
#define RTROUTER_LOG_WARN 1
#define RTROUTER_LOG_INFO 2
#define RTROUTER_LOG_DEBUG 3
#define RTROUTER_LOG_TRACE 4

/* The exports the module defines (match and target are each optional, one is required). */
int32_t rtrouter_abi_version(void);
int32_t rtrouter_buffer(void);
int32_t rtrouter_buffer_len(void);
/* Once per rule: its --args are at the start of the buffer. 0 accepts the rule; anything
 * else refuses it, with a little-endian u32 length and a UTF-8 message in the buffer. */
int32_t rtrouter_init(int32_t handle, int32_t args_len);
/* The buffer holds the metadata record and len packet bytes: 1 match, 0 not. */
int32_t rtrouter_match(int32_t handle, int32_t len);
/* Same input; a RTROUTER_VERDICT_* value. */
int32_t rtrouter_target(int32_t handle, int32_t len);

/* Host functions. */
RTROUTER_IMPORT("log") void rtrouter_log(int32_t level, const void *ptr, int32_t len);
RTROUTER_IMPORT("random") int64_t rtrouter_random(void);
RTROUTER_IMPORT("counter_add") void rtrouter_counter_add(int32_t id, int64_t delta);
/* The value's length (copying at most val_cap bytes), or -1 when absent. */
RTROUTER_IMPORT("kv_get") int32_t rtrouter_kv_get(const void *key, int32_t key_len, void *val, int32_t val_cap);
/* 0, or -1 when the store is full. */
RTROUTER_IMPORT("kv_set") int32_t rtrouter_kv_set(const void *key, int32_t key_len, const void *val, int32_t val_len);
/* Set to new if the value is old (old_len -1: if absent): 1 swapped, 0 not, -1 full. */
RTROUTER_IMPORT("kv_cas")
int32_t rtrouter_kv_cas(const void *key, int32_t key_len, const void *old, int32_t old_len, const void *new_val,
                        int32_t new_len);

#endif
