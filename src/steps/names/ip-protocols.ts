/** IP protocol numbers (IPPROTO_*, linux/in.h) → names, as sockets report them in sk_protocol. */
export const IP_PROTOCOLS: Readonly<Record<number, string>> = {
  0: 'IP',
  1: 'ICMP',
  2: 'IGMP',
  6: 'TCP',
  17: 'UDP',
  33: 'DCCP',
  41: 'IPV6',
  58: 'ICMPV6',
  132: 'SCTP',
  136: 'UDPLITE',
  255: 'RAW',
  262: 'MPTCP',
};
