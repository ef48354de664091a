#!/usr/bin/env bash
# Install the system packages telephonist needs, only if they are missing.
#   mmdebstrap  builds the sandbox Asterisk root filesystem (Debian unstable)
#   sip-tester  sipp: real SIP callers and agents for the tests
#   mosquitto   the MQTT broker (a broker already on 1883 is reused)
#   postgresql  the second storage backend the tests run on
#   espeak-ng, sox  the sandbox's spoken prompts (the post-call survey)
set -euo pipefail
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v sipp >/dev/null || need+=(sip-tester)
command -v mosquitto >/dev/null || need+=(mosquitto)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v python3 >/dev/null || need+=(python3 python3-venv)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: missing packages ${need[*]} and not root: install them with apt-get" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
