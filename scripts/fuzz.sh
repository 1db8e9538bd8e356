#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS each
# (default 60), starting from the checked-in seeds in fuzz/seeds/<target>.
# Needs the nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz --locked
# Usage: scripts/fuzz.sh [target ...]   (no arguments: all targets)
# A crash stops the run; the input is saved under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  # Catalog documents are larger than libFuzzer's default 4 KiB inputs.
  max_len=4096
  [ "$target" = catalog_import ] && max_len=131072
  printf '\n==> fuzzing %s for %ss\n' "$target" "$seconds"
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1
done
