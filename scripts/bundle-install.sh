#!/bin/sh
# Install this etcdmgr bundle on a host without network: the one-file etcdmgr and the etcd
# versions beside it, checked against SHA256SUMS first.
# (This is install.sh of the bundles that `build_zipapp.py --bundle` writes.)
#
# Usage: ./install.sh [--prefix=DIR] [--etcd-dir=DIR] [--python=PYTHON]
#   --prefix=DIR     etcdmgr goes to DIR/bin/etcdmgr, with the links etcd-manager and
#                    etcd-manager-ctl beside it (default: /usr/local)
#   --etcd-dir=DIR   the etcd-v<VERSION>-linux-<arch>/ folders go there (default: /opt, where the
#                    daemon looks; another folder is passed to it with --etcd-bin-dir=DIR)
#   --python=PYTHON  the interpreter etcdmgr runs with, when the host's python3 is too old or too
#                    new (default: python3 from PATH)
set -eu

prefix=/usr/local etcd_dir=/opt python=
for arg in "$@"; do
  case "$arg" in
    --prefix=*) prefix=${arg#--prefix=} ;;
    --etcd-dir=*) etcd_dir=${arg#--etcd-dir=} ;;
    --python=*) python=${arg#--python=} ;;
    -h|--help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
arch=@ARCH@
if [ "$(uname -m)" != "$arch" ]; then
  echo "install.sh: this bundle is for $arch hosts, this one is $(uname -m)" >&2
  exit 1
fi
(cd "$here" && sha256sum --quiet -c SHA256SUMS) || {
  echo "install.sh: the bundle's files do not match SHA256SUMS; copy it again" >&2
  exit 1
}

for folder in "$here"/opt/etcd-v*/; do
  name=$(basename "$folder")
  mkdir -p "$etcd_dir/$name"
  for binary in "$folder"*; do
    install -m 0755 "$binary" "$etcd_dir/$name/"
  done
  echo "installed $etcd_dir/$name"
done

mkdir -p "$prefix/bin"
if [ -n "$python" ]; then  # the archive with another first line: a zip reader skips what precedes it
  { printf '#!%s\n' "$python"; tail -n +2 "$here/etcdmgr.pyz"; } > "$prefix/bin/.etcdmgr.new"
else
  cp "$here/etcdmgr.pyz" "$prefix/bin/.etcdmgr.new"
fi
chmod 0755 "$prefix/bin/.etcdmgr.new"
mv -f "$prefix/bin/.etcdmgr.new" "$prefix/bin/etcdmgr"
ln -sf etcdmgr "$prefix/bin/etcd-manager"
ln -sf etcdmgr "$prefix/bin/etcd-manager-ctl"
echo "installed $prefix/bin/etcdmgr (and the links etcd-manager, etcd-manager-ctl)"

# The first run unpacks the file and loads its native modules: a Python it cannot use says so.
exec "$prefix/bin/etcdmgr" version "--etcd-bin-dir=$etcd_dir"
