#!/usr/bin/env bash
# Make sure an MQTT broker answers on 127.0.0.1:${MQTT_PORT:-1883}; start mosquitto if none does.
set -euo pipefail
port=${MQTT_PORT:-1883}
up() { (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; }
if up; then exit 0; fi
echo "starting mosquitto on 127.0.0.1:$port"
conf=$(mktemp /tmp/telephonist-mosquitto.XXXXXX.conf)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$conf"
mosquitto -d -c "$conf"
for _ in $(seq 50); do up && exit 0; sleep 0.1; done
echo "error: mosquitto did not start on 127.0.0.1:$port" >&2
exit 1
