#!/usr/bin/env bash
# fd_peak.sh PID STOP_FILE: counts the descriptors of process PID as often as it can until
# STOP_FILE exists, then prints the most it saw (tests/bench/aggregate.sh's sampler).
peak=0
while [ ! -e "$2" ]; do
    count=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
    [ "$count" -gt "$peak" ] && peak=$count
done
echo "$peak"
