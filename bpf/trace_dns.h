#ifndef TRACE_DNS_H
#define TRACE_DNS_H

/* Bytes of a DNS packet copied from the IP header on: IP + UDP headers and
 * the classic 512-byte DNS message limit. Longer (EDNS) answers are cut
 * here; user space parses the records that fit. */
#define PACKET_CAPTURE_MAX 1024
#define DNS_PORT 53

#include "include/packet_event.h"

#endif
