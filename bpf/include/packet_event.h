/* The event of the packet gadgets (include/packet.h): fixed-width types
 * only, so user-space C (the layout test) includes it as BPF does. The
 * gadget's header defines PACKET_CAPTURE_MAX (bytes copied, a power of two)
 * first. */
#ifndef GADGET_PACKET_EVENT_H
#define GADGET_PACKET_EVENT_H

#ifndef PACKET_CAPTURE_MAX
#error "define PACKET_CAPTURE_MAX before including include/packet_event.h"
#endif

#define PACKET_HOOK_SOCKET 0
#define PACKET_HOOK_INGRESS 1
#define PACKET_HOOK_EGRESS 2

#define PACKET_IPPROTO_TCP 6
#define PACKET_IPPROTO_UDP 17

/* One captured packet. `data` holds `len` bytes from the IP header on. */
struct packet_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns */
	__u64 netns;     /* inode of the network namespace of the packet's device */
	__u64 cgroup_id; /* of the sending task (cgroup egress), else 0 */
	__u64 mntns_id;  /* of the sending task (cgroup egress), else 0 */
	__u32 pid;       /* sending task (cgroup egress), else 0 */
	__u32 tid;
	__u32 len;       /* bytes in data */
	__u32 wire_len;  /* bytes of the whole packet from the IP header */
	__u32 ifindex;
	__u8 hook;       /* PACKET_HOOK_* */
	__u8 pkt_type;   /* PACKET_HOST, PACKET_OUTGOING, ... (socket hook) */
	__u8 __pad[2];
	char comm[16];
	__u8 data[PACKET_CAPTURE_MAX];
};

#endif
