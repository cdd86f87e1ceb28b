#!/usr/bin/env bash
# Print the original design's three curls, ready to paste, for the running stack, with
# the follow that puts a11's tweet into a15's timeline.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
cat <<TXT

  Gateway: http://localhost:$GATEWAY_PORT   (logs: $STACK_DIR/logs, stop: make stop)

  # a15 follows a13
  curl --location 'http://localhost:$GATEWAY_PORT/api/v1/follow' \\
  --header 'X-User-ID: a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15' \\
  --header 'Content-Type: application/json' \\
  --data '{"follow_user_id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13"}'

  # a11 tweets
  curl --location 'http://localhost:$GATEWAY_PORT/api/v1/tweet' \\
  --header 'X-User-ID: a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' \\
  --header 'Content-Type: application/json' \\
  --data '{"text": "test redis #3", "idempotency_key": "a00ffe35-fc64-45f3-be60-8c824ec0a346"}'

  # a15 follows a11 too (not in the original design: a13 has not tweeted, and a
  # follow brings the followee's recent tweets into the follower's timeline)
  curl --location 'http://localhost:$GATEWAY_PORT/api/v1/follow' \\
  --header 'X-User-ID: a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15' \\
  --header 'Content-Type: application/json' \\
  --data '{"follow_user_id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}'

  # a15's timeline: a11's tweet
  curl --location 'http://localhost:$GATEWAY_PORT/api/v1/timeline' \\
  --header 'X-User-ID: a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15'

TXT
