/* What every top (interval mode) object shares: the count of updates that
 * found the aggregation map full, and the find-or-insert of a key's entry.
 * User space reads and clears the map every interval (src/steps/modes/interval.ts). */
#ifndef GADGET_TOP_H
#define GADGET_TOP_H

#include "gadget.h"

/* Default keys per map; a node with more active keys per interval loses counts (reported). */
#define GADGET_TOP_MAX_ENTRIES 10240

/* Updates the map had no room for (user space reports them as lost). */
__u64 gadget_lost = 0;

/* The entry of `key`, inserted as `zero` when absent; NULL when the map is full. */
static __always_inline void *gadget_top_entry(void *map, const void *key, const void *zero)
{
	void *v = bpf_map_lookup_elem(map, key);
	if (v)
		return v;
	/* NOEXIST: another CPU may insert the same key meanwhile; then use its entry */
	if (bpf_map_update_elem(map, key, zero, BPF_NOEXIST) == -7 /* E2BIG */) {
		__sync_fetch_and_add(&gadget_lost, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(map, key);
}

#endif
