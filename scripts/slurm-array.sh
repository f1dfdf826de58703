#!/usr/bin/env bash
# Runs one spec as a Slurm job array: task i computes shard i/N of the spec's stages into a
# cache on a shared filesystem, then a dependent job merges the table.
#
#   scripts/slurm-array.sh experiments/leaderboard_cifar10_resnet20.toml 8 [extra sbatch args...]
#
# Environment (all optional):
#   RUNNER      the runner binary            (default: target/release/runner)
#   CACHE_DIR   a cache every node can reach (default: .cache; use a shared filesystem)
#   DATA_DIR    the data root                (default: $SNN_DATA_DIR, else datasets/)
#   CPUS        cores per task               (default: 2)
#   TIME        time limit per task          (default: 24:00:00)
#
# Every shard that needs an ANN waits (file lock in the cache) while one of them trains it,
# so each ANN is trained once. The merge job runs `runner merge`, which computes nothing and
# fails, listing what is missing, if a shard did not finish; rerun that shard and merge again.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
spec=$1
shards=$2
shift 2
[[ -f $spec ]] || { echo "no spec file $spec" >&2; exit 2; }
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "the shard count must be a positive integer, got $shards" >&2; exit 2; }

runner=${RUNNER:-target/release/runner}
cache=${CACHE_DIR:-.cache}
cpus=${CPUS:-2}
time_limit=${TIME:-24:00:00}
args=(--cache-dir "$cache")
if [[ -n ${DATA_DIR:-} ]]; then
    args+=(--data-dir "$DATA_DIR")
fi
[[ -x $runner ]] || { echo "no runner binary at $runner (cargo build --release -p runner)" >&2; exit 2; }
"$runner" plan "$spec" "${args[@]}" >/dev/null

name=$(basename "$spec" .toml)
mkdir -p logs
array_job=$(sbatch --parsable --job-name="$name" --array="0-$((shards - 1))" --cpus-per-task="$cpus" \
    --time="$time_limit" --output="logs/$name-%a.out" "$@" \
    --wrap="\"$runner\" run \"$spec\" --shard \$SLURM_ARRAY_TASK_ID/$shards ${args[*]}")
merge_job=$(sbatch --parsable --job-name="$name-merge" --dependency="afterok:$array_job" --cpus-per-task=1 \
    --time=01:00:00 --output="logs/$name-merge.out" "$@" \
    --wrap="\"$runner\" merge \"$spec\" ${args[*]}")
echo "submitted $shards shard(s) as job $array_job and the merge as job $merge_job (logs in logs/)"
