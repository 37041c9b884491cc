#!/bin/bash
# Continue the SO3net stage-two-with-stress model. The heap-only malloc keeps every freed page, so the RSS grows;
# SIGTERM (checkpoint after the current step) and resume whenever it passes the limit, until summary.json exists.
cd /work/stress_run
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776
LIMIT_KB=$((205*1024*1024/10))
for attempt in $(seq 1 60); do
  [ -f /work/cpu_so3/stage3/run/summary.json ] && exit 0
  /work/main/.venv/bin/mlp-transfer train --regime transfer \
    --source-model /work/cpu_so3/stage2_stress/model.pt --source-element Ge --pool results/data/mlearn/Ge/train.extxyz \
    --splits results/splits/mlearn/Ge/seed0.json --size all --element Ge --seed 0 --config /work/cpu_so3/stage3.yaml \
    --out-dir /work/cpu_so3/stage3/run >> /work/cpu_so3/stage3.log 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null; do
    rss=$(ps -o rss= -p $pid | tr -d ' ')
    if [ -n "$rss" ] && [ "$rss" -gt "$LIMIT_KB" ]; then
      echo "$(date) watchdog: RSS ${rss} kB > limit, SIGTERM" >> /work/cpu_so3/stage3.log
      kill -TERM $pid; wait $pid
    fi
    sleep 5
  done
  wait $pid; echo "$(date) watchdog: exit $? (attempt $attempt)" >> /work/cpu_so3/stage3.log
done
