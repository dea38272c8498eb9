#!/bin/sh
# install.sh: turns a fresh Debian chroot into an sbx image. sbx's image build copies this
# folder to /tmp/guest in the chroot and runs, with /bin/sh inside the chroot:
#   install.sh early    before the packages are installed (so the initrd is built once)
#   install.sh main     after the packages: units, sshd, network, the boot diet
#   install.sh finish   after the recipe's setup script: last cleanups and stamps
set -eu

G=/tmp/guest

say() { echo "sbx: $*"; }

# Units that slow boot or make no sense in a disposable VM. Masked rather than disabled:
# on first boot (empty /etc/machine-id) systemd enables units by preset, never masked ones.
MASK="
apt-daily.timer apt-daily.service apt-daily-upgrade.timer apt-daily-upgrade.service
dpkg-db-backup.timer dpkg-db-backup.service
man-db.timer man-db.service
e2scrub_all.timer e2scrub_all.service e2scrub_reap.service
fstrim.timer fstrim.service
getty@tty1.service
systemd-networkd-wait-online.service
systemd-network-generator.service
systemd-pstore.service
systemd-firstboot.service
getty-static.service
kmod-static-nodes.service
modprobe@drm.service modprobe@dm_mod.service modprobe@loop.service modprobe@configfs.service
sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount dev-hugepages.mount
"

# Generators run (in parallel, but on two slow CPUs) before any unit starts. Kept: fstab.
# The serial console gets its getty from a plain enable instead of the getty generator.
GENERATORS_MASK="
cryptsetup debug getty gpt-auto hibernate-resume integritysetup rc-local run
system-update sysv veritysetup
"

# Early-boot work sshd does not need: it starts once sshd listens (see after-ssh.conf).
AFTER_SSH="
systemd-udevd.service systemd-udev-trigger.service systemd-networkd.service
systemd-journal-flush.service systemd-random-seed.service systemd-update-utmp.service
modprobe@fuse.service sys-fs-fuse-connections.mount sbx-growfs.service acpid.service
"

# Drivers the sbx initrd loads: the disks and the network of a microvm (virtio-mmio), and
# the root filesystem (built into the cloud kernel, a module of the generic one).
INITRD_MODULES="virtio_mmio virtio_blk virtio_net ext4"

early() {
    say "initramfs configuration"
    mkdir -p /etc/initramfs-tools/conf.d /etc/initramfs-tools/hooks
    install -m 0644 "$G/initramfs.conf" /etc/initramfs-tools/conf.d/sbx.conf
    install -m 0755 "$G/initramfs-hook" /etc/initramfs-tools/hooks/sbx
}

main() {
    say "guest services"
    install -D -m 0755 "$G/sbx-seed" /usr/lib/sbx/sbx-seed
    install -D -m 0755 "$G/sbx-growfs" /usr/lib/sbx/sbx-growfs
    install -d -m 0755 /var/lib/sbx
    # ssh.service replaces Debian's: sshd starts right after the seed, not after early boot.
    install -m 0644 "$G/sbx-seed.service" "$G/sbx-growfs.service" "$G/ssh.service" \
        "$G/sbx-boot-done.service" /etc/systemd/system/
    install -D -m 0644 "$G/sshd_config.conf" /etc/ssh/sshd_config.d/sbx.conf
    install -D -m 0644 "$G/eth0.network" /etc/systemd/network/10-sbx-eth0.network
    systemctl enable --quiet sbx-seed.service sbx-growfs.service sbx-boot-done.service \
        systemd-networkd.service ssh.service serial-getty@ttyS0.service

    say "boot diet"
    # shellcheck disable=SC2086 # word splitting intended
    systemctl mask --quiet $MASK
    mkdir -p /etc/systemd/system-generators
    for g in $GENERATORS_MASK; do
        ln -sf /dev/null "/etc/systemd/system-generators/systemd-$g-generator"
    done
    for u in $AFTER_SSH; do
        install -D -m 0644 "$G/after-ssh.conf" "/etc/systemd/system/$u.d/sbx-after-ssh.conf"
    done
    # `sbx down` is QEMU's system_powerdown: the ACPI power button. Without logind (no D-Bus
    # in sbx images) acpid turns it into a clean shutdown.
    install -D -m 0644 "$G/acpi-powerbtn" /etc/acpi/events/sbx-powerbtn
    systemctl enable --quiet acpid.service
    # No /run/nologin while booting: sshd (and so sbx) may log in as soon as it listens,
    # instead of after systemd-user-sessions.service at the end of early boot.
    ln -sf /dev/null /etc/tmpfiles.d/systemd-nologin.conf

    # The dynamic motd runs scripts (uname) at every ssh login, also `ssh host command`.
    sed -i 's|^session[[:space:]]\+optional[[:space:]]\+pam_motd.so[[:space:]]\+motd=/run/motd.dynamic|# sbx: &|' \
        /etc/pam.d/sshd

    say "base configuration"
    # Root has no password: the serial console is the host user's only; sshd refuses root.
    passwd -d root > /dev/null
    echo sbx > /etc/hostname
    cat > /etc/hosts <<'EOF'
127.0.0.1	localhost
127.0.1.1	sbx
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
    # No resolved: netd is the guest's only resolver, fixed like the address (guest.hpp).
    rm -f /etc/resolv.conf
    echo "nameserver 10.0.2.3" > /etc/resolv.conf
    # The kernel mounts / rw (root=LABEL=sbxroot rw); no fsck pass: the journal covers crashes.
    # noinit_itable: the space sbx-growfs adds reads as zeros already (qcow2), skip zeroing it.
    cat > /etc/fstab <<'EOF'
LABEL=sbxroot / ext4 rw,noatime,noinit_itable,errors=remount-ro 0 0
EOF
}

# The initrd sbx boots (not initramfs-tools' one): busybox-static, the virtio drivers with
# their dependencies in load order, and initrd-init as /init. Uncompressed: the kernel then
# has nothing to decompress, which is worth more than the few MB QEMU reads from the host.
make_initrd() {
    say "sbx initrd"
    set -- /lib/modules/*
    [ "$#" -eq 1 ] || { echo "sbx: expected one kernel in /lib/modules, found: $*" >&2; exit 1; }
    kver=${1##*/}
    work=$(mktemp -d)
    mkdir -p "$work/bin" "$work/dev" "$work/proc" "$work/sys" "$work/root" "$work/lib/modules"
    cp /bin/busybox "$work/bin/busybox"
    for applet in sh mount insmod findfs usleep switch_root; do
        /bin/busybox --list | grep -qx "$applet" ||
            { echo "sbx: busybox has no $applet" >&2; exit 1; }
        ln -s busybox "$work/bin/$applet"
    done
    # Dependencies first, each module once.
    # shellcheck disable=SC2086 # word splitting intended
    modprobe -S "$kver" --show-depends -a $INITRD_MODULES > "$work/deps"
    loaded=" "
    while read -r what path _; do
        [ "$what" = insmod ] || continue
        case "$loaded" in *" $path "*) continue ;; esac
        loaded="$loaded$path "
        cp "$path" "$work/lib/modules/"
        echo "${path##*/}" >> "$work/lib/modules/load"
    done < "$work/deps"
    rm "$work/deps"
    [ -s "$work/lib/modules/load" ] || { echo "sbx: no modules for the initrd" >&2; exit 1; }
    install -m 0755 "$G/initrd-init" "$work/init"
    (cd "$work" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > /boot/sbx-initrd.img
    rm -rf "$work"
}

finish() {
    make_initrd
    say "final cleanup"
    # sbx boots the kernel kept beside the image, so its modules must stay: no kernel
    # upgrades or removals from inside the guest.
    # Installed ones only: dpkg also knows names it merely saw (linux-image-generic).
    apt-mark hold $(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 'linux-image-*' 2> /dev/null |
        while read -r st pkg; do [ "$st" = ii ] && echo "$pkg"; done) > /dev/null
    # Every instance brings its own host key (from the seed).
    rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
    # Nothing in /etc or /var "needs update" relative to /usr: otherwise the first boot
    # runs ldconfig, hwdb and journal catalog rebuilds (seconds without KVM).
    stamp="TIMESTAMP_NSEC=$(stat -c %.9Y /usr | tr -d .)"
    for d in /etc /var; do
        printf '%s\n' "# Written by the sbx image build (see systemd-update-done.service(8))." \
            "$stamp" > "$d/.updated"
        touch -r /usr "$d/.updated"
    done
}

case "${1:-}" in
early) early ;;
main) main ;;
finish) finish ;;
*)
    echo "usage: install.sh early|main|finish" >&2
    exit 2
    ;;
esac
