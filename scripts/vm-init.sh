#!/bin/busybox sh
# /init of the guest that scripts/vm.mjs boots: mount the host's root (read-only,
# over 9p) under a tmpfs overlay, give it fresh kernel filesystems, chroot into it
# and run the job the host left in its run folder; report the exit code there and
# power off. Everything printed here goes to the serial console (the boot log).
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

die() {
	echo "vm-init: $*"
	poweroff -f
}

run=
for arg in $(cat /proc/cmdline); do
	case "$arg" in gadgetrun.dir=*) run="${arg#gadgetrun.dir=}" ;; esac
done
[ -n "$run" ] || die "no gadgetrun.dir= on the kernel command line"

# dependencies first, as the host computed from modules.dep
while read -r m; do
	insmod "/modules/$m" || die "insmod $m failed"
done </modules/order

# cache=loose: the host root does not change under a short-lived guest, and node reads
# its binary 3-5x faster than uncached
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || die "mounting the host root (9p) failed"
mount -t tmpfs -o mode=0755 rw /rw
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /root || die "the overlay on the host root failed"

r=/root
# the kernel's whole module tree where the host root's modprobe looks for it; the kernel's
# own module requests run /sbin/modprobe in this initramfs, which hands them to that one
mods="$(cat "/lower$run/modules")"
mkdir -p "$r/lib/modules/$(uname -r)"
mount --bind "$r$mods" "$r/lib/modules/$(uname -r)" || die "binding the modules of $(uname -r) failed"
echo /bin/chroot-modprobe >/proc/sys/kernel/modprobe
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
# the host's /tmp, /run and caches (its BTF cache is for its own kernel) are not the guest's
mount -t tmpfs -o mode=1777 tmp $r/tmp
mount -t tmpfs -o mode=0755 run $r/run
mount -t tmpfs -o mode=0755 cache $r/var/cache
# ... though the job may read them: the host root as it is, read-only, at /run/vm-host
mkdir -p $r/run/vm-host
mount --bind /lower $r/run/vm-host
mount -t bpf bpf $r/sys/fs/bpf
mount -t tracefs tracefs $r/sys/kernel/tracing
mount -t debugfs debugfs $r/sys/kernel/debug
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup

# the run folder and the shares, writable and uncached, at their host paths
mkdir -p "$r$run"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 gadgetrun.run "$r$run" || die "mounting the run folder failed"
while read -r tag dir; do
	mkdir -p "$r$dir"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "$tag" "$r$dir" || die "mounting share $dir failed"
done <"$r$run/shares"

ip link set lo up
hostname "$(cat "$r$run/hostname")"

out=/dev/console
err=/dev/console
beat=
for p in /sys/class/virtio-ports/*; do
	case "$(cat "$p/name")" in
	gadgetrun.stdout) out="/dev/${p##*/}" ;;
	gadgetrun.stderr) err="/dev/${p##*/}" ;;
	gadgetrun.heartbeat) beat="/dev/${p##*/}" ;;
	esac
done
# the host kills a guest whose heartbeat stops (a kernel stuck on every CPU writes nothing)
if [ -n "$beat" ]; then
	(while :; do cut -d' ' -f1 /proc/uptime; sleep 5; done) >"$beat" 2>/dev/null </dev/null &
fi

chroot $r /bin/sh "$run/job.sh" <"/dev/null" >"$out" 2>"$err"
echo $? >"$r$run/rc"
sync
poweroff -f
