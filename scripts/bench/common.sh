# Shared by the bench scripts (sourced). `bench_work`: the release binary in $ARBOR (or exit
# asking for a build), a temporary $WORK removed at exit, the config directory inside it.
bench_work() {
  ARBOR="$PWD/target/release/arbor"
  [ -x "$ARBOR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
  WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
  export ARBOR_CONFIG_DIR="$WORK/config"
}
# `secs CMD…` runs CMD with its output discarded and
# prints "SECONDS PEAK_MB" (wall time, and the peak memory of the command's processes).
secs() { python3 -c 'import sys,time,subprocess,resource; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); dt=time.perf_counter()-t; rss=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024; print(f"{dt:.2f} {rss:.0f}")' "$@"; }
