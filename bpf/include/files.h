/* Files of the current task, reached through its file table with CO-RE
 * reads (no kprobes here: syscall tracepoints give only the fd). */
#ifndef GADGET_FILES_H
#define GADGET_FILES_H

#include "gadget.h"

#define GADGET_S_IFMT 00170000
#define GADGET_S_IFREG 0100000
#define GADGET_S_IFSOCK 0140000

/* The struct file behind `fd` in `task`'s file table, or NULL. The table
 * is read with probe reads, so a racing close yields NULL or a stale
 * pointer, never a fault; callers only read through it. */
static __always_inline struct file *gadget_fd_file(struct task_struct *task, __u64 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline bool gadget_file_is_regular(struct file *file)
{
	return (BPF_CORE_READ(file, f_inode, i_mode) & GADGET_S_IFMT) == GADGET_S_IFREG;
}

/* the file system type's name ("ext4", "tmpfs") into `buf` */
static __always_inline void gadget_file_fs_name(struct file *file, char *buf, __u32 size)
{
	const char *name = BPF_CORE_READ(file, f_inode, i_sb, s_type, name);
	if (bpf_probe_read_kernel_str(buf, size, name) < 0)
		buf[0] = 0;
}

/* the file's last path component (its dentry's name) into `buf` */
static __always_inline void gadget_file_name(struct file *file, char *buf, __u32 size)
{
	const unsigned char *name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(buf, size, name) < 0)
		buf[0] = 0;
}

#endif
