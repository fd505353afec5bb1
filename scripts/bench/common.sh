# Shared by the bench scripts (sourced): `secs CMD…` runs CMD with its output discarded and
# prints "SECONDS PEAK_MB" (wall time, and the peak memory of the command's processes).
secs() { python3 -c 'import sys,time,subprocess,resource; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); dt=time.perf_counter()-t; rss=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024; print(f"{dt:.2f} {rss:.0f}")' "$@"; }
