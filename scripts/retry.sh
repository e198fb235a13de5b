# Sourced by the scripts that download: retry WHAT CMD... runs CMD until it
# succeeds, waiting 5 s, 10 s, 20 s ... (at most 2 minutes) between attempts,
# and gives up once the next wait would pass $RETRY_SECONDS (1200): package
# mirrors and the Go module proxy drop connections now and then, for
# minutes at worst.
retry() {
  local what=$1 start=$SECONDS delay=5 attempt=1
  shift
  until "$@"; do
    if [ $((SECONDS - start + delay)) -gt "${RETRY_SECONDS:-1200}" ]; then
      echo "$what failed $attempt times in $((SECONDS - start)) s; giving up" >&2
      return 1
    fi
    echo "$what failed (attempt $attempt), again in ${delay}s" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 > 120 ? 120 : delay * 2))
  done
}

# mirrors lists the servers apt downloads from, for messages.
mirrors() {
  { grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | cut -d: -f2-; } | tr ' ' '\n' | grep . | sort -u | paste -sd' '
}
