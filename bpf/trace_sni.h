#ifndef TRACE_SNI_H
#define TRACE_SNI_H

/* Bytes of a TCP segment copied from the IP header on: enough for the
 * ClientHello of common clients (OpenSSL/Node ~ 300-600 bytes, browsers
 * up to ~1800 with post-quantum key shares), whose server_name extension
 * usually comes early. A name beyond the capture is not reported. */
#define PACKET_CAPTURE_MAX 2048
/* params.ports: at most this many; none = every port */
#define SNI_MAX_PORTS 8

#include "include/packet_event.h"

#endif
