/* Files seen from BPF without kprobes: the struct file behind a file
 * descriptor of the current task, through its BTF-typed file table. */
#ifndef GADGET_FILE_H
#define GADGET_FILE_H

#include "gadget.h"

#define GADGET_S_IFMT 0170000
#define GADGET_S_IFREG 0100000
#define GADGET_S_IFSOCK 0140000

/* The struct file behind `fd` in the current task, or NULL when the fd is
 * not open. The file table can change under us (another thread closing the
 * fd), so every step is a checked read, not a walk the verifier trusts. */
static __always_inline struct file *gadget_file_of_fd(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

#endif
