/* c-port-range: an rtrouter match written in C, to show the plugin ABI is language-neutral
 * (sdk/ABI.md, and sdk/rtrouter.h for its constants). It matches TCP, UDP and SCTP packets whose destination port lies in a range:
 * --args "1000-2000" (or one port). Build:
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic \
 *         -Wl,--allow-undefined -o c_port_range.wasm port_range.c
 */
#include <stdint.h>
#include "../../sdk/rtrouter.h"

#define META_LEN RTROUTER_META_LEN
#define BUF_LEN (META_LEN + 2048)
#define MAX_RULES 64

static uint8_t buffer[BUF_LEN];
static uint16_t lo[MAX_RULES], hi[MAX_RULES];

RTROUTER_EXPORT("rtrouter_abi_version") int32_t rtrouter_abi_version(void) { return RTROUTER_ABI_VERSION; }
RTROUTER_EXPORT("rtrouter_buffer") int32_t rtrouter_buffer(void) { return (int32_t)(uintptr_t)buffer; }
RTROUTER_EXPORT("rtrouter_buffer_len") int32_t rtrouter_buffer_len(void) { return BUF_LEN; }

static int32_t refuse(const char *msg) {
    uint32_t n = 0;
    while (msg[n]) { buffer[4 + n] = (uint8_t)msg[n]; n++; }
    buffer[0] = n; buffer[1] = buffer[2] = buffer[3] = 0;
    return 1;
}

/* Parses a decimal port at *i; returns -1 on error. */
static int32_t port(int32_t len, int32_t *i) {
    int32_t v = 0, digits = 0;
    while (*i < len && buffer[*i] >= '0' && buffer[*i] <= '9') {
        v = v * 10 + (buffer[*i] - '0');
        (*i)++; digits++;
        if (v > 65535) return -1;
    }
    return digits ? v : -1;
}

RTROUTER_EXPORT("rtrouter_init") int32_t rtrouter_init(int32_t handle, int32_t len) {
    if (handle < 0 || handle >= MAX_RULES) return refuse("too many rules for this plugin");
    int32_t i = 0;
    int32_t a = port(len, &i), b = a;
    if (a >= 0 && i < len && buffer[i] == '-') { i++; b = port(len, &i); }
    if (a < 0 || b < 0 || i != len || a > b) return refuse("expected PORT or LOW-HIGH");
    lo[handle] = (uint16_t)a; hi[handle] = (uint16_t)b;
    return 0;
}

RTROUTER_EXPORT("rtrouter_match") int32_t rtrouter_match(int32_t handle, int32_t len) {
    if (handle < 0 || handle >= MAX_RULES) return 0;
    uint8_t proto = buffer[RTROUTER_META_PROTO];
    uint32_t l4 = buffer[RTROUTER_META_L4_OFFSET] | (buffer[RTROUTER_META_L4_OFFSET + 1] << 8);
    if ((proto != 6 && proto != 17 && proto != 132) || l4 == 0 || l4 + 4 > (uint32_t)len) return 0;
    uint16_t d = (uint16_t)(buffer[META_LEN + l4 + 2] << 8 | buffer[META_LEN + l4 + 3]);
    return d >= lo[handle] && d <= hi[handle];
}
