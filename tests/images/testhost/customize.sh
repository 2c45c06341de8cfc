#!/usr/bin/env bash
# Make the systemd test host boot quietly inside a container.
set -euo pipefail
rootfs=$1
# Units that cannot work in a container and only slow the boot down.
for unit in systemd-remount-fs.service systemd-udevd.service systemd-udev-trigger.service \
            getty.target console-getty.service systemd-logind.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo 'testhost' >"$rootfs/etc/hostname"
