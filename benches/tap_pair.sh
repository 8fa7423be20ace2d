# benches/tap_pair.sh — sourced by interleaved.sh and paired_rtt.sh: one
# switch between two network namespaces.
#
# start_pair NS_A NS_B TAP0 TAP1 NET DIR COMMAND: creates NS_A and NS_B, runs
# COMMAND (@P0/@P1 replaced by TAP0/TAP1, @D by DIR) pinned to CPU 1 with
# its output in DIR/log and a stdin that stays open (VDE's switch quits at
# EOF), then moves TAP0 into NS_A as NET.1/24 and TAP1 into NS_B as
# NET.2/24, both up. The TAPs are created here unless COMMAND is vswitchd
# (which creates its own). Appends the command's pid to the array
# PAIR_PIDS as soon as it runs (so the caller's cleanup stops it even if
# the rest fails) and sets PAIR_FD (the fd keeping its stdin open).
# Removing it all is the caller's.
start_pair() {
  local a=$1 b=$2 p0=$3 p1=$4 net=$5 d=$6 cmd=$7
  ip netns add "$a"; ip netns add "$b"
  cmd=${cmd//@P0/$p0}; cmd=${cmd//@P1/$p1}; cmd=${cmd//@D/$d}
  case "$cmd" in *vswitchd*) ;; *) ip tuntap add "$p0" mode tap; ip tuntap add "$p1" mode tap ;; esac
  mkfifo "$d/stdin"
  exec {PAIR_FD}<>"$d/stdin"
  # shellcheck disable=SC2086 # the command is a word list on purpose
  taskset -c 1 $cmd <"$d/stdin" >"$d/log" 2>&1 &
  PAIR_PIDS+=("$!")
  for _ in $(seq 100); do ip link show "$p0" >/dev/null 2>&1 && ip link show "$p1" >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 0.5
  ip link set "$p0" netns "$a"; ip link set "$p1" netns "$b"
  ip -n "$a" addr add "$net.1/24" dev "$p0"; ip -n "$a" link set "$p0" up
  ip -n "$b" addr add "$net.2/24" dev "$p1"; ip -n "$b" link set "$p1" up
}
