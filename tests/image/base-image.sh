#!/usr/bin/env bash
# Make a Docker base image locally, for building dashd's image where no
# container registry is reachable (tests/test_image.py; docs/operations.md#the-image).
#
#   tests/image/base-image.sh TAG [ROOTFS_CACHE_DIR]
#
# Debian bookworm (debootstrap, minbase) with python3.11 in a virtualenv at
# /opt/python whose bin/ comes first on PATH, so `python` and `pip` work as in
# the python:3.11-slim-bookworm image, plus this machine's Node.js and npm for
# the frontend stage (bookworm's own nodejs is 18; the frontend's Vite needs 20+),
# and this machine's CA bundle.
# The rootfs is cached in ROOTFS_CACHE_DIR (debootstrap takes minutes).
set -euo pipefail
tag=$1
cache=${2:-/var/cache/dashd-image-test}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$cache/rootfs
docker=${DOCKER:-docker}

if [ ! -f "$cache/.debootstrapped" ]; then
    rm -rf "$rootfs"
    mkdir -p "$cache"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >&2
    touch "$cache/.debootstrapped"
fi
if [ ! -f "$cache/.complete" ]; then
    chroot "$rootfs" python3 -m venv /opt/python
    chroot "$rootfs" /opt/python/bin/pip --version >&2
    node=$(command -v node)
    install -m 0755 "$node" "$rootfs/usr/local/bin/node"
    npm_root=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")  # .../node_modules/npm
    mkdir -p "$rootfs/usr/local/lib/node_modules"
    cp -a "$npm_root" "$rootfs/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    touch "$cache/.complete"
fi

# Trust what this machine trusts: where HTTPS to the registries goes through
# an inspecting proxy, its CA is in this bundle (pip and npm in the build
# stages need it; they are pointed at it below).
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"

tar --numeric-owner -C "$rootfs" -c . | "$docker" import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$tag" >&2
echo "$tag"
